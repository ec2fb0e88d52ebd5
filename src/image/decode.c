/* decode.c — reads image files, sniffs the format from the first bytes and dispatches to the per-format decoders,
 * then applies the EXIF orientation. Also owns img_image allocation and the pixel-limit check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"

/* A file larger than this is refused before it is read: no still image lens decodes needs more. */
#define IMG_MAX_FILE_BYTES ((int64_t)1 << 31)

void img_free(img_image *img) {
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}

lens_status img_alloc(img_image *img, int width, int height) {
    size_t bytes;
    img->width = img->height = 0;
    img->rgb = NULL;
    if (width <= 0 || height <= 0 || !core_mul_size((size_t)width, (size_t)height, &bytes) ||
        !core_mul_size(bytes, 3, &bytes))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "image size %dx%d is invalid", width, height);
    img->rgb = malloc(bytes);
    if (!img->rgb) return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory allocating a %dx%d image", width, height);
    img->width = width;
    img->height = height;
    return LENS_OK;
}

lens_status img_check_size(const char *name, int64_t width, int64_t height, int64_t max_pixels) {
    if (width <= 0 || height <= 0)
        return core_fail(LENS_ERR_FORMAT, "%s: invalid image size %lldx%lld", name, (long long)width,
                         (long long)height);
    /* Both fit in 32 bits in every format lens reads, so the product cannot overflow int64. */
    int64_t pixels = width * height;
    if (max_pixels > 0 && pixels > max_pixels)
        return core_fail(LENS_ERR_LIMIT, "%s: image is %lldx%lld (%lld pixels), more than the limit of %lld pixels", name,
                         (long long)width, (long long)height, (long long)pixels, (long long)max_pixels);
    /* Row offsets are computed in int and size_t; keep every byte count comfortably inside both. */
    if (width > (1 << 24) || height > (1 << 24) || pixels > ((int64_t)1 << 40) / 3)
        return core_fail(LENS_ERR_LIMIT, "%s: image is %lldx%lld, too large to decode", name, (long long)width,
                         (long long)height);
    return LENS_OK;
}

static int starts_with(const uint8_t *data, size_t size, const char *magic, size_t n) {
    return size >= n && memcmp(data, magic, n) == 0;
}

static int is_pnm(const uint8_t *data, size_t size) {
    if (size < 3 || data[0] != 'P' || data[1] < '1' || data[1] > '6') return 0;
    return data[2] == ' ' || data[2] == '\t' || data[2] == '\n' || data[2] == '\r' || data[2] == '\v' ||
           data[2] == '\f';
}

lens_status img_decode_memory(const void *data_, size_t size, const char *name, int apply_exif, int64_t max_pixels,
                              img_image *out) {
    const uint8_t *data = data_;
    if (!name) name = "<memory>";
    if (!out) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: no output image", name);
    out->width = out->height = 0;
    out->rgb = NULL;
    if (!data && size) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: no data", name);
    if (size == 0) return core_fail(LENS_ERR_FORMAT, "%s: empty file", name);

    int orientation = 1;
    lens_status st;
    if (starts_with(data, size, "\xFF\xD8\xFF", 3))
        st = img_decode_jpeg(data, size, name, max_pixels, out, &orientation);
    else if (starts_with(data, size, "\x89PNG\r\n\x1A\n", 8))
        st = img_decode_png(data, size, name, max_pixels, out, &orientation);
    else if (size >= 12 && starts_with(data, size, "RIFF", 4) && memcmp(data + 8, "WEBP", 4) == 0)
        st = img_decode_webp(data, size, name, max_pixels, out, &orientation);
    else if (starts_with(data, size, "BM", 2))
        st = img_decode_bmp(data, size, name, max_pixels, out);
    else if (is_pnm(data, size))
        st = img_decode_pnm(data, size, name, max_pixels, out);
    else if (starts_with(data, size, "GIF87a", 6) || starts_with(data, size, "GIF89a", 6))
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: GIF images are not supported (JPEG, PNG, WebP, BMP, PPM are)",
                         name);
    else if (starts_with(data, size, "II*\0", 4) || starts_with(data, size, "MM\0*", 4))
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: TIFF images are not supported (JPEG, PNG, WebP, BMP, PPM are)",
                         name);
    else
        return core_fail(LENS_ERR_FORMAT, "%s: unknown image format (not JPEG, PNG, WebP, BMP or PPM)", name);
    if (st != LENS_OK) {
        img_free(out);
        return st;
    }
    if (apply_exif && orientation != 1) {
        st = img_apply_orientation(out, orientation);
        if (st != LENS_OK) {
            img_free(out);
            return core_fail_context(st, "%s", name);
        }
    }
    return LENS_OK;
}

/* Reads a whole file into a malloc'd buffer: in one read when it is a regular file of known size, else growing. */
static lens_status read_file(const char *path, uint8_t **data, size_t *size) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return core_fail(LENS_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat info;
    size_t cap = 1 << 16;
    if (fstat(fileno(f), &info) == 0 && S_ISREG(info.st_mode)) {
        if ((int64_t)info.st_size > IMG_MAX_FILE_BYTES) {
            fclose(f);
            return core_fail(LENS_ERR_LIMIT, "%s: file is larger than %lld bytes", path, (long long)IMG_MAX_FILE_BYTES);
        }
        cap = (size_t)info.st_size + 1; /* + 1 so a file that grew meanwhile shows as a short final read */
    }
    lens_status st = LENS_OK;
    uint8_t *buf = NULL;
    size_t len = 0;
    for (;;) {
        if (len == cap || !buf) {
            size_t new_cap = buf ? cap * 2 : cap;
            if ((int64_t)new_cap > IMG_MAX_FILE_BYTES + 1) {
                st = core_fail(LENS_ERR_LIMIT, "%s: file is larger than %lld bytes", path,
                               (long long)IMG_MAX_FILE_BYTES);
                break;
            }
            uint8_t *grown = realloc(buf, new_cap);
            if (!grown) {
                st = core_fail(LENS_ERR_OUT_OF_MEMORY, "%s: out of memory reading the file", path);
                break;
            }
            buf = grown;
            cap = new_cap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) st = core_fail(LENS_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st != LENS_OK) {
        free(buf);
        return st;
    }
    *data = buf;
    *size = len;
    return LENS_OK;
}

lens_status img_decode_file(const char *path, int apply_exif, int64_t max_pixels, img_image *out) {
    if (!out) return core_fail(LENS_ERR_INVALID_ARGUMENT, "img_decode_file: no output image");
    out->width = out->height = 0;
    out->rgb = NULL;
    if (!path) return core_fail(LENS_ERR_INVALID_ARGUMENT, "img_decode_file: no path");
    uint8_t *data;
    size_t size;
    lens_status st = read_file(path, &data, &size);
    if (st != LENS_OK) return st;
    st = img_decode_memory(data, size, path, apply_exif, max_pixels, out);
    free(data);
    return st;
}
