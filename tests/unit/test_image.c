/* test_image.c — the image layer against Pillow 9.4 / torchvision 0.14: replays tests/fixtures/images/manifest.tsv
 * (decoded bytes, truncations, resizes, preprocessing tensors made by tests/gen/make_image_goldens.py), then checks
 * error paths built in memory (decompression-bomb headers, corrupt data), EXIF parsing edge cases and argument
 * validation. Runs from the repository root. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "test.h"

#define FIXTURES "tests/fixtures/images/"

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(n > 0 ? (size_t)n : 1);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return data;
}

typedef struct golden {
    int width, height, kind; /* kind 0: uint8 RGB HWC; 1: float32 CHW */
    uint8_t *data;           /* owns the whole file; pixels start at data + 16 */
} golden;

static int golden_load(const char *name, golden *g) {
    char path[512];
    snprintf(path, sizeof path, FIXTURES "%s", name);
    size_t size;
    g->data = read_all(path, &size);
    if (!g->data || size < 16 || memcmp(g->data, "LGLD", 4) != 0) {
        fprintf(stderr, "cannot read golden %s\n", path);
        free(g->data);
        return 0;
    }
    uint32_t v[3];
    memcpy(v, g->data + 4, 12); /* little-endian hosts only; every target lens builds for is */
    g->width = (int)v[0];
    g->height = (int)v[1];
    g->kind = (int)v[2];
    size_t expect = 16 + (size_t)g->width * g->height * 3 * (g->kind ? 4 : 1);
    if (size != expect) {
        fprintf(stderr, "golden %s has %zu bytes, expected %zu\n", path, size, expect);
        free(g->data);
        return 0;
    }
    return 1;
}

/* Largest absolute byte difference, or -1 on a size mismatch. */
static int image_diff(const img_image *img, const golden *g) {
    if (img->width != g->width || img->height != g->height || g->kind != 0) return -1;
    int worst = 0;
    const uint8_t *ref = g->data + 16;
    for (size_t i = 0; i < (size_t)img->width * img->height * 3; i++) {
        int d = abs((int)img->rgb[i] - (int)ref[i]);
        if (d > worst) worst = d;
    }
    return worst;
}

static lens_interpolation parse_filter(const char *name) {
    if (!strcmp(name, "nearest")) return LENS_INTERP_NEAREST;
    if (!strcmp(name, "bicubic")) return LENS_INTERP_BICUBIC;
    return LENS_INTERP_BILINEAR;
}

static int counts[5]; /* cases run: decode, prefix, error, resize, tensor */

static void run_decode(char **f) {
    char path[512];
    snprintf(path, sizeof path, FIXTURES "%s", f[1]);
    golden g;
    if (!golden_load(f[3], &g)) {
        CHECK_MSG(0, "golden %s", f[3]);
        return;
    }
    img_image img;
    lens_status st = img_decode_file(path, atoi(f[2]), 100000000, &img);
    CHECK_MSG(st == LENS_OK, "%s: %s", f[1], lens_last_error());
    if (st == LENS_OK) {
        int d = image_diff(&img, &g);
        CHECK_MSG(d == 0, "decode %s (exif %s): %dx%d vs PIL %dx%d, max diff %d", f[1], f[2], img.width, img.height,
                  g.width, g.height, d);
    }
    img_free(&img);
    free(g.data);
    counts[0]++;
}

static void run_prefix(char **f) {
    char path[512];
    snprintf(path, sizeof path, FIXTURES "%s", f[1]);
    size_t size;
    uint8_t *data = read_all(path, &size);
    size_t cut = (size_t)atol(f[2]);
    CHECK_MSG(data && cut <= size, "%s", path);
    if (!data || cut > size) {
        free(data);
        return;
    }
    /* A private copy of exactly cut bytes, so AddressSanitizer sees any read past the end. */
    uint8_t *part = malloc(cut ? cut : 1);
    memcpy(part, data, cut);
    img_image img;
    lens_status st = img_decode_memory(part, cut, f[1], 0, 100000000, &img);
    int want = atoi(f[4]);
    if (strcmp(f[3], "-") != 0) {
        golden g;
        CHECK_MSG(st == LENS_OK, "%s cut to %zu bytes: %s (PIL decodes it)", f[1], cut, lens_last_error());
        if (st == LENS_OK && golden_load(f[3], &g)) {
            CHECK_MSG(image_diff(&img, &g) == 0, "%s cut to %zu bytes differs from PIL", f[1], cut);
            free(g.data);
        }
    } else {
        CHECK_MSG((int)st == want, "%s cut to %zu bytes: status %d, want %d (PIL refuses it); %s", f[1], cut, (int)st,
                  want, lens_last_error());
        CHECK_MSG(img.rgb == NULL, "failed decode left an image");
        CHECK_MSG(strncmp(lens_last_error(), f[1], strlen(f[1])) == 0, "message names the input: %s",
                  lens_last_error());
    }
    img_free(&img);
    free(part);
    free(data);
    counts[1]++;
}

static void run_error(char **f) {
    char path[512];
    snprintf(path, sizeof path, FIXTURES "%s", f[1]);
    img_image img;
    lens_status st = img_decode_file(path, 1, 100000000, &img);
    CHECK_MSG((int)st == atoi(f[2]), "%s: status %d, want %s (%s)", f[1], (int)st, f[2], lens_last_error());
    CHECK_MSG(strncmp(lens_last_error(), path, strlen(path)) == 0, "message starts with the path: %s",
              lens_last_error());
    CHECK(img.rgb == NULL && img.width == 0);
    if (st == LENS_ERR_IO)
        CHECK_MSG(strstr(lens_last_error(), "No such file or directory") != NULL, "%s", lens_last_error());
    counts[2]++;
}

static void run_resize(char **f) {
    char path[512];
    snprintf(path, sizeof path, FIXTURES "%s", f[1]);
    golden g;
    img_image src, out;
    if (!golden_load(f[5], &g)) {
        CHECK_MSG(0, "golden %s", f[5]);
        return;
    }
    lens_status st = img_decode_file(path, 0, 0, &src);
    CHECK_MSG(st == LENS_OK, "%s", lens_last_error());
    if (st == LENS_OK) {
        st = img_resize(&src, atoi(f[2]), atoi(f[3]), parse_filter(f[4]), &out);
        CHECK_MSG(st == LENS_OK, "%s", lens_last_error());
        if (st == LENS_OK) {
            int d = image_diff(&out, &g);
            CHECK_MSG(d == 0, "resize %s to %sx%s %s: max diff %d vs PIL", f[1], f[2], f[3], f[4], d);
            /* Any window of the resize is the same bytes as the full resize. */
            int ww = out.width > 2 ? out.width - 2 : out.width, wh = out.height > 3 ? out.height - 3 : out.height;
            int x0 = out.width - ww, y0 = (out.height - wh) / 2;
            img_image win;
            st = img_resize_window(&src, out.width, out.height, x0, y0, ww, wh, parse_filter(f[4]), &win);
            CHECK_MSG(st == LENS_OK, "%s", lens_last_error());
            int same = st == LENS_OK;
            for (int y = 0; same && y < wh; y++)
                same = memcmp(win.rgb + (size_t)y * ww * 3, out.rgb + ((size_t)(y0 + y) * out.width + x0) * 3,
                              (size_t)ww * 3) == 0;
            CHECK_MSG(same, "window %dx%d at (%d,%d) of resize %s %sx%s %s differs", ww, wh, x0, y0, f[1], f[2], f[3],
                      f[4]);
            img_free(&win);
        }
        img_free(&out);
    }
    img_free(&src);
    free(g.data);
    counts[3]++;
}

static void run_tensor(char **f) {
    char path[512];
    snprintf(path, sizeof path, FIXTURES "%s", f[1]);
    golden g;
    if (!golden_load(f[7], &g)) {
        CHECK_MSG(0, "golden %s", f[7]);
        return;
    }
    lens_preprocess pre = img_preprocess_default();
    pre.resize_size = atoi(f[2]);
    pre.crop_size = atoi(f[3]);
    pre.crop_fraction = (float)atof(f[4]);
    pre.interpolation = parse_filter(f[5]);
    pre.bgr = atoi(f[6]);
    if (pre.crop_fraction > 0) pre.resize_size = 0;
    float *t = NULL;
    int h = 0, w = 0;
    lens_status st = img_load_tensor(path, &pre, &t, &h, &w);
    CHECK_MSG(st == LENS_OK, "%s", lens_last_error());
    CHECK_MSG(h == g.height && w == g.width, "tensor %s: %dx%d vs torchvision %dx%d", f[7], h, w, g.height, g.width);
    if (st == LENS_OK && h == g.height && w == g.width) {
        const float *ref = (const float *)(const void *)(g.data + 16);
        double worst = 0;
        int exact = 1;
        for (int c = 0; c < 3; c++)
            for (size_t i = 0; i < (size_t)h * w; i++) {
                float a = t[c * (size_t)h * w + i], b;
                memcpy(&b, ref + c * (size_t)h * w + i, 4);
                double d = fabs((double)a - (double)b) * pre.std[c] * 255.0; /* in pixel levels */
                if (d > worst) worst = d;
                if (a != b) exact = 0;
            }
        CHECK_MSG(worst <= 1.0 + 1e-4, "tensor %s: max diff %.4f pixel levels vs torchvision", f[7], worst);
        /* Resize and crop are byte-exact and ToTensor/Normalize are the same float32 ops, so bits should agree. */
        CHECK_MSG(exact, "tensor %s is not bit-identical to torchvision (max %.6f levels)", f[7], worst);
    }
    free(t);
    free(g.data);
    counts[4]++;
}

static void replay_manifest(void) {
    size_t size;
    char *text = (char *)read_all(FIXTURES "manifest.tsv", &size);
    CHECK_MSG(text != NULL, "cannot read " FIXTURES "manifest.tsv");
    if (!text) return;
    text = realloc(text, size + 1);
    text[size] = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        char *f[10] = {0};
        int n = 0;
        for (char *p = line; p && n < 10; n++) {
            f[n] = p;
            p = strchr(p, '\t');
            if (p) *p++ = 0;
        }
        if (!strcmp(f[0], "decode") && n >= 4) run_decode(f);
        else if (!strcmp(f[0], "prefix") && n >= 5) run_prefix(f);
        else if (!strcmp(f[0], "error") && n >= 3) run_error(f);
        else if (!strcmp(f[0], "resize") && n >= 6) run_resize(f);
        else if (!strcmp(f[0], "tensor") && n >= 8) run_tensor(f);
        else CHECK_MSG(0, "bad manifest line: %s", line);
    }
    free(text);
    printf("manifest: %d decode, %d truncation, %d error, %d resize, %d tensor cases\n", counts[0], counts[1],
           counts[2], counts[3], counts[4]);
    CHECK(counts[0] >= 40 && counts[1] >= 15 && counts[2] >= 5 && counts[3] >= 30 && counts[4] >= 10);
}

/* ---- Cases built in memory ------------------------------------------------------------------------------------- */

static uint32_t crc32_bytes(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void expect_status(const uint8_t *data, size_t size, lens_status want, int64_t max_pixels, const char *what) {
    img_image img;
    lens_status st = img_decode_memory(data, size, what, 1, max_pixels, &img);
    CHECK_MSG(st == want, "%s: status %d, want %d (%s)", what, (int)st, (int)want, lens_last_error());
    if (st != LENS_OK) CHECK_MSG(strncmp(lens_last_error(), what, strlen(what)) == 0, "%s", lens_last_error());
    img_free(&img);
}

static void test_bombs(void) {
    /* A PNG header claiming 60000x60000 with a valid CRC: refused from the header alone. */
    uint8_t png[8 + 25] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    put_be32(png + 16, 60000);
    put_be32(png + 20, 60000);
    png[24] = 8;
    png[25] = 2;
    put_be32(png + 29, crc32_bytes(png + 12, 17));
    expect_status(png, sizeof png, LENS_ERR_LIMIT, 100000000, "bomb.png");
    CHECK_MSG(strstr(lens_last_error(), "60000x60000") && strstr(lens_last_error(), "100000000"), "%s",
              lens_last_error());

    /* JPEG: SOI, DQT, SOF0 60000x60000 with 3 components, SOS; refused before any scanline memory. */
    uint8_t jpeg[2 + 69 + 19 + 14 + 2];
    size_t n = 0;
    static const uint8_t sof[] = {0xFF, 0xC0, 0, 17, 8, 0xEA, 0x60, 0xEA, 0x60, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0};
    static const uint8_t sos[] = {0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0};
    jpeg[n++] = 0xFF, jpeg[n++] = 0xD8;
    jpeg[n++] = 0xFF, jpeg[n++] = 0xDB, jpeg[n++] = 0, jpeg[n++] = 67, jpeg[n++] = 0;
    memset(jpeg + n, 1, 64);
    n += 64;
    memcpy(jpeg + n, sof, sizeof sof);
    n += sizeof sof;
    memcpy(jpeg + n, sos, sizeof sos);
    n += sizeof sos;
    jpeg[n++] = 0xFF, jpeg[n++] = 0xD9;
    CHECK(n == sizeof jpeg);
    expect_status(jpeg, sizeof jpeg, LENS_ERR_LIMIT, 100000000, "bomb.jpg");
    CHECK_MSG(strstr(lens_last_error(), "60000x60000") != NULL, "%s", lens_last_error());

    /* BMP 40000x40000 24-bit with no pixel data, PPM 20000x20000. */
    uint8_t bmp[54] = {'B', 'M'};
    bmp[10] = 54;
    bmp[14] = 40;
    bmp[18] = 0x40, bmp[19] = 0x9C; /* 40000 */
    bmp[22] = 0x40, bmp[23] = 0x9C;
    bmp[26] = 1;
    bmp[28] = 24;
    expect_status(bmp, sizeof bmp, LENS_ERR_LIMIT, 100000000, "bomb.bmp");
    static const char ppm[] = "P6\n20000 20000\n255\n";
    expect_status((const uint8_t *)ppm, sizeof ppm - 1, LENS_ERR_LIMIT, 100000000, "bomb.ppm");
    /* The same PPM header is only a truncation error when the limit allows it. */
    expect_status((const uint8_t *)ppm, sizeof ppm - 1, LENS_ERR_FORMAT, 0, "big.ppm");

    /* WebP VP8L header claiming 16384x16384. */
    uint8_t webp[30] = {'R', 'I', 'F', 'F', 22, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'L', 10, 0, 0, 0, 0x2F};
    uint32_t bits = (16384 - 1) | (uint32_t)(16384 - 1) << 14;
    webp[21] = (uint8_t)bits;
    webp[22] = (uint8_t)(bits >> 8);
    webp[23] = (uint8_t)(bits >> 16);
    webp[24] = (uint8_t)(bits >> 24);
    expect_status(webp, sizeof webp, LENS_ERR_LIMIT, 100000000, "bomb.webp");

    /* A scan bomb: a progressive JPEG whose last scan is repeated 600 times (libjpeg only warns about the bogus
     * progression, so without a scan limit it would decode them all). */
    size_t size;
    uint8_t *prog = read_all(FIXTURES "progressive.jpg", &size);
    CHECK(prog != NULL && size > 4);
    if (prog) {
        size_t last_sos = 0;
        for (size_t i = 2; i + 1 < size; i++)
            if (prog[i] == 0xFF && prog[i + 1] == 0xDA) last_sos = i;
        size_t scan = size - 2 - last_sos, repeats = 600;
        uint8_t *bomb = malloc(last_sos + scan * repeats + 2);
        memcpy(bomb, prog, last_sos);
        for (size_t r = 0; r < repeats; r++) memcpy(bomb + last_sos + r * scan, prog + last_sos, scan);
        memcpy(bomb + last_sos + scan * repeats, "\xFF\xD9", 2);
        expect_status(bomb, last_sos + scan * repeats + 2, LENS_ERR_LIMIT, 100000000, "scans.jpg");
        CHECK_MSG(strstr(lens_last_error(), "scans") != NULL, "%s", lens_last_error());
        /* The same construction with a few repeats is still an image. */
        memcpy(bomb + last_sos + scan * 3, "\xFF\xD9", 2);
        expect_status(bomb, last_sos + scan * 3 + 2, LENS_OK, 100000000, "rescan.jpg");
        free(bomb);
        free(prog);
    }

    /* A real image over a small limit. */
    img_image img;
    lens_status st = img_decode_file(FIXTURES "rgb.jpg", 1, 37 * 23 - 1, &img);
    CHECK_MSG(st == LENS_ERR_LIMIT && strstr(lens_last_error(), "37x23"), "%s", lens_last_error());
    st = img_decode_file(FIXTURES "rgb.jpg", 1, 37 * 23, &img);
    CHECK(st == LENS_OK);
    img_free(&img);
}

static void test_corrupt(void) {
    size_t size;
    uint8_t *jpg = read_all(FIXTURES "rgb.jpg", &size);
    CHECK(jpg != NULL);
    if (!jpg) return;
    /* Every truncation of a JPEG is an error (PIL: "image file is truncated"), never a grey-padded image. */
    int ok_count = 0;
    for (size_t cut = 0; cut < size; cut += 7) {
        img_image img;
        uint8_t *part = malloc(cut ? cut : 1);
        memcpy(part, jpg, cut);
        if (img_decode_memory(part, cut, "cut.jpg", 1, 0, &img) == LENS_OK) ok_count++;
        img_free(&img);
        free(part);
    }
    CHECK_MSG(ok_count == 0, "%d truncated JPEGs decoded", ok_count);

    /* Flipped bytes: any status is fine so long as nothing crashes (ASan/UBSan runs watch this) and failures say
     * which input. */
    uint32_t seed = 12345;
    const char *names[] = {"rgb.jpg", "rgb.png", "lossy.webp", "rgb.bmp", "palette8.bmp", "plain.ppm",
                           "progressive.jpg", "palette4_short.bmp", "rgb1000.ppm", "exif6.jpg"};
    for (size_t n = 0; n < sizeof names / sizeof *names; n++) {
        char path[256];
        snprintf(path, sizeof path, FIXTURES "%s", names[n]);
        size_t len;
        uint8_t *orig = read_all(path, &len);
        CHECK(orig != NULL);
        if (!orig) continue;
        for (int trial = 0; trial < 40; trial++) {
            uint8_t *copy = malloc(len);
            memcpy(copy, orig, len);
            for (int k = 0; k < 1 + trial % 4; k++) {
                seed = seed * 1103515245u + 12345u;
                size_t pos = (seed >> 8) % len;
                seed = seed * 1103515245u + 12345u;
                copy[pos] = (uint8_t)(seed >> 16);
            }
            img_image img;
            lens_status st = img_decode_memory(copy, len, names[n], 1, 100000000, &img);
            if (st != LENS_OK) {
                CHECK_MSG(strncmp(lens_last_error(), names[n], strlen(names[n])) == 0, "%s", lens_last_error());
                CHECK(img.rgb == NULL);
            } else {
                CHECK(img.width > 0 && img.height > 0 && img.rgb != NULL);
            }
            img_free(&img);
            free(copy);
        }
        free(orig);
    }
    free(jpg);

    /* Formats that are recognised but not decoded, and bad BMP/PNM headers. */
    expect_status((const uint8_t *)"GIF89a\1\0\1\0\0\0\0", 13, LENS_ERR_UNSUPPORTED, 0, "x.gif");
    expect_status((const uint8_t *)"P6\n-3 2\n255\n", 12, LENS_ERR_FORMAT, 0, "neg.ppm");
    expect_status((const uint8_t *)"P6\n3 2\n0\n", 9, LENS_ERR_FORMAT, 0, "maxval0.ppm");
    expect_status((const uint8_t *)"P6\n3 2\n65536\n", 13, LENS_ERR_FORMAT, 0, "maxval.ppm");
    expect_status((const uint8_t *)"P3\n1 1\n255\n1 2 300\n", 20, LENS_ERR_FORMAT, 0, "over.ppm");
    expect_status((const uint8_t *)"P2\n2 1\n255\n1 x\n", 15, LENS_ERR_FORMAT, 0, "token.pgm");
    expect_status((const uint8_t *)"P1\n2 1\n1", 8, LENS_ERR_FORMAT, 0, "short.pbm");
    expect_status((const uint8_t *)"BM", 2, LENS_ERR_FORMAT, 0, "tiny.bmp");
    uint8_t bmp[54 + 4] = {'B', 'M'};
    bmp[10] = 54;
    bmp[14] = 40;
    bmp[18] = 1;
    bmp[22] = 1;
    bmp[26] = 1;
    bmp[28] = 16;
    expect_status(bmp, sizeof bmp, LENS_ERR_UNSUPPORTED, 0, "bits16.bmp");
    bmp[28] = 24;
    bmp[30] = 1; /* RLE8 */
    expect_status(bmp, sizeof bmp, LENS_ERR_UNSUPPORTED, 0, "rle.bmp");
    bmp[30] = 0;
    expect_status(bmp, sizeof bmp, LENS_OK, 0, "one.bmp");
    bmp[10] = 200; /* pixel data offset past the end */
    expect_status(bmp, sizeof bmp, LENS_ERR_FORMAT, 0, "offset.bmp");
    expect_status(NULL, 0, LENS_ERR_FORMAT, 0, "null");

    img_image img;
    CHECK(img_decode_file(FIXTURES, 1, 0, &img) == LENS_ERR_IO); /* a directory */
    CHECK(img_decode_memory("x", 1, NULL, 1, 0, &img) == LENS_ERR_FORMAT);
    CHECK(strncmp(lens_last_error(), "<memory>", 8) == 0);
}

static void test_exif_parser(void) {
    /* Little-endian TIFF with the orientation as the only entry, then damaged variants. */
    uint8_t t[26] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0};
    CHECK(img_exif_orientation(t, sizeof t) == 6);
    CHECK(img_exif_orientation(t, 21) == 1); /* entry cut off */
    CHECK(img_exif_orientation(t, 4) == 1);
    CHECK(img_exif_orientation(NULL, 10) == 1);
    t[18] = 9; /* out of range */
    CHECK(img_exif_orientation(t, sizeof t) == 1);
    t[18] = 6;
    t[4] = 0xF0; /* IFD offset past the end */
    CHECK(img_exif_orientation(t, sizeof t) == 1);
    t[4] = 0xFF, t[5] = 0xFF, t[6] = 0xFF, t[7] = 0xFF; /* and one that would overflow */
    CHECK(img_exif_orientation(t, sizeof t) == 1);
    t[4] = 8, t[5] = t[6] = t[7] = 0;
    t[8] = 0xFF, t[9] = 0xFF; /* 65535 entries claimed, one present */
    CHECK(img_exif_orientation(t, sizeof t) == 6);
    uint8_t prefixed[32] = {'E', 'x', 'i', 'f', 0, 0};
    memcpy(prefixed + 6, t, sizeof t);
    CHECK(img_exif_orientation(prefixed, sizeof prefixed) == 6);

    /* Orientation on a 2x3 image with distinct pixels: dimensions swap for 5..8 and 8 undoes 6. */
    img_image img;
    CHECK(img_alloc(&img, 2, 3) == LENS_OK);
    for (int i = 0; i < 18; i++) img.rgb[i] = (uint8_t)i;
    CHECK(img_apply_orientation(&img, 6) == LENS_OK);
    CHECK(img.width == 3 && img.height == 2);
    /* 90 degrees clockwise: the new top-left is the old bottom-left (x 0, y 2). */
    CHECK(img.rgb[0] == (2 * 2 + 0) * 3);
    CHECK(img_apply_orientation(&img, 8) == LENS_OK);
    int same = img.width == 2 && img.height == 3;
    for (int i = 0; same && i < 18; i++) same = img.rgb[i] == i;
    CHECK(same);
    CHECK(img_apply_orientation(&img, 1) == LENS_OK && img.width == 2);
    img_free(&img);
    img_free(&img); /* twice is harmless */
    img_free(NULL);
}

static void test_preprocess_api(void) {
    lens_preprocess d = img_preprocess_default();
    CHECK(d.resize_size == 256 && d.crop_size == 224 && d.crop_fraction == 0.0f);
    CHECK(d.interpolation == LENS_INTERP_BILINEAR && d.bgr == 0 && d.apply_exif == 1);
    CHECK(d.max_pixels == 100000000);
    CHECK_NEAR(d.mean[0], 0.485, 1e-7);
    CHECK_NEAR(d.std[2], 0.225, 1e-7);
    CHECK_NEAR(d.scale, 1.0 / 255.0, 1e-9);

    img_image img;
    CHECK(img_alloc(&img, 500, 375) == LENS_OK);
    memset(img.rgb, 128, 500 * 375 * 3);
    int h, w;
    CHECK(img_output_size(&img, &d, &h, &w) == LENS_OK && h == 224 && w == 224);
    lens_preprocess p = d;
    p.crop_size = 0;
    /* torchvision: shorter side 256, longer int(256 * 500 / 375) = 341. */
    CHECK(img_output_size(&img, &p, &h, &w) == LENS_OK && h == 256 && w == 341);
    p.resize_size = 0;
    CHECK(img_output_size(&img, &p, &h, &w) == LENS_OK && h == 375 && w == 500);

    /* crop_fraction: timm's floor(crop / pct), with the decimal the float stands for. */
    int r;
    p = d;
    p.crop_fraction = 0.875f;
    CHECK(img_resize_target(&p, &r) == LENS_OK && r == 256);
    p.crop_size = 256;
    p.crop_fraction = 0.8f; /* 256 / 0.8f in float arithmetic would give 319 */
    CHECK(img_resize_target(&p, &r) == LENS_OK && r == 320);
    p.crop_size = 288;
    p.crop_fraction = 0.95f;
    CHECK(img_resize_target(&p, &r) == LENS_OK && r == 303);
    p.crop_size = 224;
    p.crop_fraction = 0.9f;
    CHECK(img_resize_target(&p, &r) == LENS_OK && r == 248);

    /* Bad settings and mismatched buffers. */
    float *buf = malloc(sizeof *buf * 3 * 224 * 224);
    p = d;
    p.std[1] = 0;
    CHECK(img_to_tensor(&img, &p, buf, 224, 224) == LENS_ERR_INVALID_ARGUMENT);
    p = d;
    p.resize_size = -1;
    CHECK(img_output_size(&img, &p, &h, &w) == LENS_ERR_INVALID_ARGUMENT);
    p = d;
    p.interpolation = (lens_interpolation)7;
    CHECK(img_output_size(&img, &p, &h, &w) == LENS_ERR_INVALID_ARGUMENT);
    p = d;
    p.crop_size = 0;
    p.crop_fraction = 0.5f;
    CHECK(img_output_size(&img, &p, &h, &w) == LENS_ERR_INVALID_ARGUMENT);
    CHECK(img_to_tensor(&img, &d, buf, 224, 223) == LENS_ERR_SHAPE);
    CHECK(img_to_tensor(&img, &d, buf, 224, 224) == LENS_OK);
    /* A flat grey image normalises to (128/255 - mean) / std everywhere; BGR swaps the planes' sources. */
    CHECK_NEAR(buf[0], (128.0f / 255.0f - 0.485f) / 0.229f, 1e-6);
    CHECK_NEAR(buf[224 * 224 * 2 + 5], (128.0f / 255.0f - 0.406f) / 0.225f, 1e-6);
    img.rgb[0] = 255; /* pure red top-left, cropped away by the 256/224 resize+crop: results unchanged */
    CHECK(img_to_tensor(&img, &d, buf, 224, 224) == LENS_OK);
    CHECK_NEAR(buf[0], (128.0f / 255.0f - 0.485f) / 0.229f, 1e-6);
    free(buf);

    img_image out;
    CHECK(img_resize(&img, 0, 5, LENS_INTERP_BILINEAR, &out) == LENS_ERR_INVALID_ARGUMENT);
    CHECK(img_resize(&img, 5, 5, (lens_interpolation)9, &out) == LENS_ERR_INVALID_ARGUMENT);
    CHECK(img_resize_window(&img, 10, 10, 5, 5, 6, 1, LENS_INTERP_BILINEAR, &out) == LENS_ERR_INVALID_ARGUMENT);
    /* Extreme ratios stay within the image and keep flat colour flat. */
    CHECK(img_resize(&img, 1, 1, LENS_INTERP_BICUBIC, &out) == LENS_OK && out.width == 1);
    img_free(&out);
    CHECK(img_resize(&img, 2000, 3, LENS_INTERP_BICUBIC, &out) == LENS_OK);
    CHECK(out.rgb[3 * 1000 + 1] == 128);
    img_free(&out);
    img_free(&img);

    float *t = NULL;
    CHECK(img_load_tensor(FIXTURES "missing.png", NULL, &t, &h, &w) == LENS_ERR_IO && t == NULL);
    CHECK(img_load_tensor(FIXTURES "rgb.png", NULL, &t, &h, &w) == LENS_OK && h == 224 && w == 224);
    free(t);
}

int main(void) {
    replay_manifest();
    test_bombs();
    test_corrupt();
    test_exif_parser();
    test_preprocess_api();
    return test_finish("test_image");
}
