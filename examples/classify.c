/* classify.c — the smallest useful program on the lens library: load a model, classify images, print the top 3.
 * Build: CMake builds it as build/example_classify. Run: build/example_classify model.onnx photo.jpg ... */
#include <stdio.h>

#include "lens.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.onnx IMAGE...\n", argv[0]);
        return 2;
    }
    lens_model *model;
    if (lens_model_load(argv[1], NULL, &model) != LENS_OK) {
        fprintf(stderr, "example: %s\n", lens_last_error());
        return 1;
    }
    int status = 0;
    for (int i = 2; i < argc; i++) {
        lens_prediction top[3];
        int n;
        if (lens_classify_file(model, argv[i], NULL, 3, top, &n) != LENS_OK) {
            fprintf(stderr, "example: %s\n", lens_last_error());
            status = 1;
            continue;
        }
        printf("%s:", argv[i]);
        for (int j = 0; j < n; j++) printf("  %s %.1f%%", top[j].label ? top[j].label : "?", 100 * top[j].score);
        printf("\n");
    }
    lens_model_free(model);
    return status;
}
