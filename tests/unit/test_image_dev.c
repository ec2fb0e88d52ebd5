/* test_image_dev.c — lens's decode + Resize(256) + CenterCrop(224) on the 200 ImageNet dev JPEGs against PIL's crops
 * (tests/fixtures/images/imagenet_dev_crops.tsv, made by tests/gen/check_pil_parity.py): the CRC of each crop must
 * equal PIL's, or failing that the per-channel sums must be within one level per pixel. Skips when
 * ../shared/data/imagenet-dev is absent. With LENS_DUMP_DIR set, writes each crop there as raw RGB for
 * check_pil_parity.py --compare. Runs from the repository root. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image/image.h"
#include "test.h"

#define DEV_DIR "../shared/data/imagenet-dev"
#define TSV "tests/fixtures/images/imagenet_dev_crops.tsv"

static uint32_t crc32_bytes(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

int main(void) {
    struct stat st;
    if (stat(DEV_DIR, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("test_image_dev: skipped, %s is missing\n", DEV_DIR);
        return test_finish("test_image_dev");
    }
    FILE *tsv = fopen(TSV, "r");
    CHECK_MSG(tsv != NULL, "cannot open %s", TSV);
    if (!tsv) return test_finish("test_image_dev");
    const char *dump = getenv("LENS_DUMP_DIR");
    const lens_preprocess pre = img_preprocess_default();
    char line[1024];
    int images = 0, exact = 0, close = 0;
    long long worst_sum_diff = 0;
    double seconds = 0;
    while (fgets(line, sizeof line, tsv)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char name[512];
        unsigned crc;
        long long sums[3];
        if (sscanf(line, "%511s %x %lld %lld %lld", name, &crc, &sums[0], &sums[1], &sums[2]) != 5) {
            CHECK_MSG(0, "bad line in %s: %s", TSV, line);
            continue;
        }
        char path[1024];
        snprintf(path, sizeof path, DEV_DIR "/%s", name);
        img_image img, crop;
        double t0 = core_now();
        /* torchvision's loader ignores EXIF orientation, so the comparison does too. */
        lens_status s = img_decode_file(path, 0, pre.max_pixels, &img);
        if (s == LENS_OK) {
            s = img_preprocess_pixels(&img, &pre, &crop);
            img_free(&img);
        }
        seconds += core_now() - t0;
        CHECK_MSG(s == LENS_OK, "%s", lens_last_error());
        if (s != LENS_OK) continue;
        images++;
        CHECK_MSG(crop.width == 224 && crop.height == 224, "%s: crop %dx%d", name, crop.width, crop.height);
        size_t n = (size_t)crop.width * crop.height;
        long long got[3] = {0, 0, 0};
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < 3; c++) got[c] += crop.rgb[3 * i + c];
        if (crc32_bytes(crop.rgb, n * 3) == crc) {
            exact++;
        } else {
            int ok = 1;
            for (int c = 0; c < 3; c++) {
                long long d = llabs(got[c] - sums[c]);
                if (d > worst_sum_diff) worst_sum_diff = d;
                if (d > (long long)n) ok = 0;
            }
            close += ok;
            CHECK_MSG(ok, "%s: channel sums %lld %lld %lld vs PIL %lld %lld %lld", name, got[0], got[1], got[2],
                      sums[0], sums[1], sums[2]);
        }
        if (dump) {
            char out[1100];
            snprintf(out, sizeof out, "%s/%s.rgb", dump, name);
            FILE *f = fopen(out, "wb");
            CHECK_MSG(f && fwrite(crop.rgb, 1, n * 3, f) == n * 3, "cannot write %s", out);
            if (f) fclose(f);
        }
        img_free(&crop);
    }
    fclose(tsv);
    CHECK_MSG(images >= 200, "only %d images compared", images);
    printf("test_image_dev: %d images, %d byte-identical to PIL, %d within the sum tolerance (largest channel-sum "
           "difference %lld); decode+resize+crop %.1f ms per image\n",
           images, exact, close, worst_sum_diff, images ? 1000 * seconds / images : 0.0);
    return test_finish("test_image_dev");
}
