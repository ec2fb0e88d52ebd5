/* cmd_classify.c — `lens classify`: decodes images on a background thread while the model runs batches, then prints
 * the top-k labels per image in the order given. A bad image gets its own error line; the rest still run. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
    "usage: lens classify -m MODEL [options] IMAGE...\n"
    "\n"
    "Classifies each IMAGE (JPEG, PNG, WebP, BMP, PPM) and prints its top-k labels with probabilities.\n"
    "Preprocessing defaults to the model's own size with torchvision's ImageNet eval transform\n"
    "(resize 256 with PIL's antialiased bilinear filter, centre crop 224, ImageNet mean/std).\n"
    "\n"
    "  -m, --model FILE          the model (.onnx)\n"
    "  -k, --top K               labels per image (default 5)\n"
    "      --json                one JSON object per line per image\n"
    "  -t, --threads N           worker threads (default: physical cores)\n"
    "  -b, --batch N             images per inference batch (default 1)\n"
    "      --labels FILE         class names, one per line (default: model metadata, else ImageNet-1k\n"
    "                            when the model has 1000 classes)\n"
    "      --resize N            resize the shorter side to N pixels\n"
    "      --crop N              centre crop N x N pixels\n"
    "      --crop-fraction F     resize to crop / F (timm's crop_pct)\n"
    "      --interpolation MODE  bilinear (default), bicubic or nearest, as PIL computes them\n"
    "      --mean R,G,B          per-channel mean (default 0.485,0.456,0.406)\n"
    "      --std R,G,B           per-channel std (default 0.229,0.224,0.225)\n"
    "      --scale F             multiply pixel values by F first (default 1/255)\n"
    "      --bgr                 feed channels in BGR order\n"
    "      --no-exif             ignore EXIF orientation\n"
    "      --max-pixels N        refuse images with more pixels (default 100000000)\n"
    "  -h, --help                show this help\n";

/* ---- The decode queue: a background thread fills slots in image order --------------------------------------- */

typedef struct decoded {
    float *chw; /* NULL when decoding failed */
    int h, w;
    char *error;
} decoded;

typedef struct decode_queue {
    char **paths;
    int n;
    const lens_preprocess *pre;
    decoded *items;
    int produced, consumed, capacity;
    pthread_mutex_t lock;
    pthread_cond_t changed;
} decode_queue;

static void *decode_main(void *arg) {
    decode_queue *q = arg;
    for (int i = 0; i < q->n; i++) {
        pthread_mutex_lock(&q->lock);
        while (i - q->consumed >= q->capacity) pthread_cond_wait(&q->changed, &q->lock);
        pthread_mutex_unlock(&q->lock);
        decoded d = {0};
        if (lens_image_load_tensor(q->paths[i], q->pre, &d.chw, &d.h, &d.w)) d.error = strdup(lens_last_error());
        pthread_mutex_lock(&q->lock);
        q->items[i] = d;
        q->produced = i + 1;
        pthread_cond_broadcast(&q->changed);
        pthread_mutex_unlock(&q->lock);
    }
    return NULL;
}

/* Blocks until image i is decoded. */
static decoded *queue_get(decode_queue *q, int i) {
    pthread_mutex_lock(&q->lock);
    while (q->produced <= i) pthread_cond_wait(&q->changed, &q->lock);
    pthread_mutex_unlock(&q->lock);
    return &q->items[i];
}

static void queue_release_through(decode_queue *q, int i) {
    pthread_mutex_lock(&q->lock);
    q->consumed = i + 1;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
}

/* ---- Output ------------------------------------------------------------------------------------------------------ */

static void print_predictions(const char *path, const lens_prediction *p, int n, int json) {
    if (json) {
        fputs("{\"image\": ", stdout);
        cli_json_string(stdout, path);
        fputs(", \"predictions\": [", stdout);
        for (int i = 0; i < n; i++) {
            printf("%s{\"index\": %lld, \"label\": ", i ? ", " : "", (long long)p[i].index);
            if (p[i].label) cli_json_string(stdout, p[i].label);
            else fputs("null", stdout);
            printf(", \"score\": %.6f}", p[i].score);
        }
        fputs("]}\n", stdout);
    } else {
        printf("%s\n", path);
        for (int i = 0; i < n; i++)
            printf("  %7.3f%%  %s (%lld)\n", 100.0 * p[i].score, p[i].label ? p[i].label : "class",
                   (long long)p[i].index);
    }
    fflush(stdout);
}

/* Runs images [first, first+count) (all decoded, same size) as one batch and prints them. */
static int run_batch(lens_model *model, decode_queue *q, int first, int count, int k, int json) {
    decoded *d0 = &q->items[first];
    size_t per = (size_t)3 * (size_t)d0->h * (size_t)d0->w;
    float *batch = malloc(per * (size_t)count * sizeof(float));
    if (!batch) {
        cli_error("out of memory for a batch of %d images", count);
        return CLI_EXIT_RUNTIME;
    }
    for (int i = 0; i < count; i++) memcpy(batch + per * (size_t)i, q->items[first + i].chw, per * sizeof(float));
    float *logits;
    int64_t classes;
    int rc = CLI_EXIT_OK;
    if (lens_model_run_batch(model, batch, count, d0->h, d0->w, &logits, &classes)) {
        for (int i = 0; i < count; i++) cli_error("%s: %s", q->paths[first + i], lens_last_error());
        rc = CLI_EXIT_RUNTIME;
    } else {
        lens_prediction *p = malloc(sizeof *p * (size_t)k);
        for (int i = 0; p && i < count; i++) {
            int n = lens_top_k(model, logits + (size_t)i * (size_t)classes, classes, k, p);
            print_predictions(q->paths[first + i], p, n, json);
        }
        if (!p) rc = CLI_EXIT_RUNTIME;
        free(p);
        free(logits);
    }
    free(batch);
    return rc;
}

int cmd_classify(int argc, char **argv) {
    const char *model_path = NULL, *labels_path = NULL, *value;
    long k = 5, threads = 0, batch = 1;
    int json = 0;
    int have_resize = 0, have_crop = 0, have_fraction = 0, have_interp = 0, have_mean = 0, have_std = 0,
        have_scale = 0, bgr = 0, no_exif = 0;
    long resize = 0, crop = 0, max_pixels = 0;
    float fraction = 0, scale = 0, mean[3], std[3];
    lens_interpolation interp = LENS_INTERP_BILINEAR;
    char **images = calloc((size_t)argc + 1, sizeof *images);
    int n_images = 0, rc = CLI_EXIT_OK;
    if (!images) return CLI_EXIT_RUNTIME;
#define OPTION(s, l) ((r = cli_option_value(argc, argv, &i, s, l, &value)) != 0)
#define USAGE_IF(cond) \
    do {               \
        if (cond) {    \
            free(images); \
            return CLI_EXIT_USAGE; \
        }              \
    } while (0)
    for (int i = 1; i < argc; i++) {
        int r = 0;
        const char *a = argv[i];
        if (cli_flag(a, "-h", "--help")) {
            fputs(help, stdout);
            free(images);
            return CLI_EXIT_OK;
        }
        if (cli_flag(a, NULL, "--json")) json = 1;
        else if (cli_flag(a, NULL, "--bgr")) bgr = 1;
        else if (cli_flag(a, NULL, "--no-exif")) no_exif = 1;
        else if (OPTION("-m", "--model")) USAGE_IF(r < 0 || !(model_path = value));
        else if (OPTION(NULL, "--labels")) USAGE_IF(r < 0 || !(labels_path = value));
        else if (OPTION("-k", "--top")) USAGE_IF(r < 0 || !cli_parse_int("--top", value, 1, 100000, &k));
        else if (OPTION("-t", "--threads")) USAGE_IF(r < 0 || !cli_parse_int("--threads", value, 1, 256, &threads));
        else if (OPTION("-b", "--batch")) USAGE_IF(r < 0 || !cli_parse_int("--batch", value, 1, 1024, &batch));
        else if (OPTION(NULL, "--resize")) USAGE_IF(r < 0 || !(have_resize = cli_parse_int("--resize", value, 1, 65535, &resize)));
        else if (OPTION(NULL, "--crop")) USAGE_IF(r < 0 || !(have_crop = cli_parse_int("--crop", value, 1, 65535, &crop)));
        else if (OPTION(NULL, "--crop-fraction")) {
            USAGE_IF(r < 0 || !(have_fraction = cli_parse_float("--crop-fraction", value, &fraction)));
            if (fraction <= 0 || fraction > 1) {
                cli_error("--crop-fraction: %s is not in (0, 1]", value);
                USAGE_IF(1);
            }
        } else if (OPTION(NULL, "--interpolation")) {
            USAGE_IF(r < 0);
            have_interp = 1;
            if (!strcmp(value, "bilinear")) interp = LENS_INTERP_BILINEAR;
            else if (!strcmp(value, "bicubic")) interp = LENS_INTERP_BICUBIC;
            else if (!strcmp(value, "nearest")) interp = LENS_INTERP_NEAREST;
            else {
                cli_error("--interpolation: '%s' is not bilinear, bicubic or nearest", value);
                USAGE_IF(1);
            }
        } else if (OPTION(NULL, "--mean")) USAGE_IF(r < 0 || !(have_mean = cli_parse_float3("--mean", value, mean)));
        else if (OPTION(NULL, "--std")) {
            USAGE_IF(r < 0 || !(have_std = cli_parse_float3("--std", value, std)));
            if (std[0] == 0 || std[1] == 0 || std[2] == 0) {
                cli_error("--std: values must not be 0");
                USAGE_IF(1);
            }
        } else if (OPTION(NULL, "--scale")) USAGE_IF(r < 0 || !(have_scale = cli_parse_float("--scale", value, &scale)));
        else if (OPTION(NULL, "--max-pixels")) USAGE_IF(r < 0 || !cli_parse_int("--max-pixels", value, 1, 4000000000L, &max_pixels));
        else if (a[0] == '-' && a[1]) {
            cli_error("classify: unknown option '%s'", a);
            fputs(help, stderr);
            USAGE_IF(1);
        } else images[n_images++] = argv[i];
    }
    if (!model_path || !n_images) {
        cli_error("classify: %s", !model_path ? "-m MODEL is required" : "no images given");
        fputs(help, stderr);
        USAGE_IF(1);
    }
#undef OPTION
#undef USAGE_IF
    lens_model_options opts = {.threads = (int)threads};
    lens_model *model;
    if (lens_model_load(model_path, &opts, &model)) {
        free(images);
        return cli_fail_last();
    }
    if (labels_path && lens_model_set_labels(model, labels_path)) {
        lens_model_free(model);
        free(images);
        return cli_fail_last();
    }
    lens_preprocess pre = lens_model_preprocess(model);
    if (have_resize) pre.resize_size = (int)resize;
    if (have_crop) pre.crop_size = (int)crop;
    if (have_fraction) pre.crop_fraction = fraction;
    if (have_interp) pre.interpolation = interp;
    if (have_mean) memcpy(pre.mean, mean, sizeof mean);
    if (have_std) memcpy(pre.std, std, sizeof std);
    if (have_scale) pre.scale = scale;
    if (bgr) pre.bgr = 1;
    if (no_exif) pre.apply_exif = 0;
    if (max_pixels) pre.max_pixels = max_pixels;

    decode_queue q = {.paths = images, .n = n_images, .pre = &pre, .capacity = 2 * (int)batch + 1};
    q.items = calloc((size_t)n_images, sizeof *q.items);
    pthread_t decoder;
    pthread_mutex_init(&q.lock, NULL);
    pthread_cond_init(&q.changed, NULL);
    if (!q.items || pthread_create(&decoder, NULL, decode_main, &q)) {
        cli_error("cannot start the decoding thread");
        free(q.items);
        lens_model_free(model);
        free(images);
        return CLI_EXIT_RUNTIME;
    }
    int i = 0;
    while (i < n_images) {
        decoded *d = queue_get(&q, i);
        if (!d->chw) {
            cli_error("%s", d->error ? d->error : "decoding failed");
            rc = CLI_EXIT_RUNTIME;
            queue_release_through(&q, i);
            i++;
            continue;
        }
        int count = 1;
        while (count < batch && i + count < n_images) {
            decoded *next = queue_get(&q, i + count);
            if (!next->chw || next->h != d->h || next->w != d->w) break;
            count++;
        }
        if (run_batch(model, &q, i, count, (int)k, json)) rc = CLI_EXIT_RUNTIME;
        for (int j = i; j < i + count; j++) {
            free(q.items[j].chw);
            q.items[j].chw = NULL;
        }
        queue_release_through(&q, i + count - 1);
        i += count;
    }
    pthread_join(decoder, NULL);
    for (int j = 0; j < n_images; j++) {
        free(q.items[j].chw);
        free(q.items[j].error);
    }
    free(q.items);
    pthread_mutex_destroy(&q.lock);
    pthread_cond_destroy(&q.changed);
    lens_model_free(model);
    free(images);
    return rc;
}
