/* decode_pnm.c — Netpbm PBM/PGM/PPM (P1..P6, plain and binary, maxval 1..65535) with PIL 9.4's arithmetic: samples
 * are scaled by round(v / maxval * 255) (Python's round, ties to even), 16-bit PGM is PIL's mode "I" whose
 * convert("RGB") clamps to 255, and PBM's 1 is black. Header tokens follow PIL's reader (comments, 10-character
 * limit). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

typedef struct pnm_reader {
    const uint8_t *data;
    size_t size, pos;
} pnm_reader;

static int is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

/* One header token as PIL's _read_token reads it: leading whitespace skipped, '#' comments dropped up to the end of
 * the line, the whitespace that ends the token consumed. Returns 0 on a missing, over-long or non-numeric token. */
static int read_token(pnm_reader *r, int64_t *value) {
    char token[12];
    size_t n = 0;
    while (r->pos < r->size && n <= 10) {
        int c = r->data[r->pos++];
        if (is_space(c)) {
            if (n == 0) continue;
            break;
        }
        if (c == '#') {
            while (r->pos < r->size && r->data[r->pos] != '\r' && r->data[r->pos] != '\n') r->pos++;
            if (r->pos < r->size) r->pos++;
            continue;
        }
        token[n++] = (char)c;
    }
    if (n == 0 || n > 10) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (token[i] < '0' || token[i] > '9') return 0;
        v = v * 10 + (token[i] - '0');
    }
    *value = v;
    return 1;
}

/* Python's round(v / maxval * out_max), clamped to out_max. */
static uint32_t scale_sample(uint32_t v, uint32_t maxval, uint32_t out_max) {
    double scaled = nearbyint((double)v / (double)maxval * (double)out_max);
    return scaled > out_max ? out_max : (uint32_t)scaled;
}

/* The next plain-format sample: whitespace and '#' comments skipped; for P1 each '0'/'1' character is a sample. */
static int plain_sample(pnm_reader *r, int bitonal, uint32_t *value) {
    for (;;) {
        if (r->pos >= r->size) return 0;
        int c = r->data[r->pos];
        if (is_space(c)) {
            r->pos++;
        } else if (c == '#') {
            while (r->pos < r->size && r->data[r->pos] != '\r' && r->data[r->pos] != '\n') r->pos++;
        } else {
            break;
        }
    }
    if (bitonal) {
        int c = r->data[r->pos++];
        if (c != '0' && c != '1') return 0;
        *value = (uint32_t)(c - '0');
        return 1;
    }
    uint64_t v = 0;
    size_t n = 0;
    while (r->pos < r->size && !is_space(r->data[r->pos]) && r->data[r->pos] != '#') {
        int c = r->data[r->pos++];
        if (c < '0' || c > '9' || ++n > 10) return 0;
        v = v * 10 + (uint64_t)(c - '0');
    }
    if (v > 0xFFFFFFFFu) return 0;
    *value = (uint32_t)v;
    return 1;
}

lens_status img_decode_pnm(const uint8_t *data, size_t size, const char *name, int64_t max_pixels, img_image *out) {
    const int kind = data[1] - '0'; /* the caller checked "P[1-6]" and a whitespace */
    pnm_reader r = {data, size, 3};
    int64_t width, height, maxval = 1;
    if (!read_token(&r, &width) || !read_token(&r, &height))
        return core_fail(LENS_ERR_FORMAT, "%s: bad or missing size in PNM header", name);
    const int bitonal = kind == 1 || kind == 4;
    if (!bitonal) {
        if (!read_token(&r, &maxval)) return core_fail(LENS_ERR_FORMAT, "%s: bad or missing maxval in PNM header", name);
        if (maxval <= 0 || maxval >= 65536)
            return core_fail(LENS_ERR_FORMAT, "%s: maxval must be greater than 0 and less than 65536", name);
    }
    lens_status st = img_check_size(name, width, height, max_pixels);
    if (st != LENS_OK) return st;
    const int w = (int)width, h = (int)height;
    const int channels = kind == 3 || kind == 6 ? 3 : 1;
    /* PGM with maxval > 255 is PIL's 32-bit mode "I" (samples scaled to 0..65535), which convert("RGB") clamps. */
    const uint32_t out_max = channels == 1 && maxval > 255 ? 65535 : 255;
    const size_t samples = (size_t)w * h * channels;

    if (kind == 4) {
        size_t stride = ((size_t)w + 7) / 8;
        if ((size - r.pos) / stride < (size_t)h) return core_fail(LENS_ERR_FORMAT, "%s: image file is truncated", name);
    } else if (kind >= 5) {
        size_t bytes_per = maxval > 255 ? 2 : 1;
        if ((size - r.pos) / bytes_per / channels / (size_t)w < (size_t)h)
            return core_fail(LENS_ERR_FORMAT, "%s: image file is truncated", name);
    }
    st = img_alloc(out, w, h);
    if (st != LENS_OK) return core_fail_context(st, "%s", name);

    const uint8_t *p = data + r.pos;
    for (size_t i = 0; i < samples; i++) {
        uint32_t v, byte;
        if (kind == 4) {
            size_t x = i % (size_t)w, y = i / (size_t)w, stride = ((size_t)w + 7) / 8;
            byte = p[y * stride + x / 8];
            v = (byte >> (7 - x % 8)) & 1 ? 0 : 255;
        } else if (kind == 1) {
            if (!plain_sample(&r, 1, &v)) goto bad_data;
            v = v ? 0 : 255;
        } else if (kind == 2 || kind == 3) {
            if (!plain_sample(&r, 0, &v)) goto bad_data;
            if (v > maxval) {
                img_free(out);
                return core_fail(LENS_ERR_FORMAT, "%s: channel value too large for this mode: %u", name, v);
            }
            v = scale_sample(v, (uint32_t)maxval, out_max);
        } else if (maxval > 255) {
            v = (uint32_t)p[2 * i] << 8 | p[2 * i + 1];
            /* 16-bit PGM at maxval 65535 is read raw; anything else through PIL's rounding decoder. */
            if (!(channels == 1 && maxval == 65535)) v = scale_sample(v, (uint32_t)maxval, out_max);
        } else {
            v = p[i];
            if (maxval != 255) v = scale_sample(v, (uint32_t)maxval, out_max);
        }
        uint8_t b = v > 255 ? 255 : (uint8_t)v;
        if (channels == 3) out->rgb[i] = b;
        else out->rgb[3 * i] = out->rgb[3 * i + 1] = out->rgb[3 * i + 2] = b;
    }
    return LENS_OK;

bad_data:
    img_free(out);
    return core_fail(LENS_ERR_FORMAT, "%s: image file is truncated or has a bad sample", name);
}
