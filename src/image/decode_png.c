/* decode_png.c — PNG through libpng, converted to RGB8 the way PIL's open + convert("RGB") does: palettes expanded,
 * alpha and tRNS dropped, 16-bit colour and grey+alpha reduced to their high byte, and 16-bit grey (PIL's mode "I")
 * clamped to 255 — PIL's own conversion, odd as it is. Also fetches the orientation from an eXIf chunk. */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "image.h"

typedef struct png_state {
    const char *name;
    const uint8_t *data;
    size_t size, pos;
    char message[256];
    png_structp png;
    png_infop info;
    png_bytep *rows;
    uint8_t *pixels; /* 16-bit grey before clamping */
    img_image image;
} png_state;

static void on_error(png_structp png, png_const_charp message) {
    png_state *s = png_get_error_ptr(png);
    snprintf(s->message, sizeof s->message, "%s", message);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static void on_read(png_structp png, png_bytep out, size_t length) {
    png_state *s = png_get_io_ptr(png);
    if (length > s->size - s->pos) {
        /* The message PIL gives for the same file. */
        png_error(png, "image file is truncated");
    }
    memcpy(out, s->data + s->pos, length);
    s->pos += length;
}

static int exif_orientation(png_state *s) {
#ifdef PNG_eXIf_SUPPORTED
    png_uint_32 length = 0;
    png_bytep exif = NULL;
    if (png_get_eXIf_1(s->png, s->info, &length, &exif) && exif) return img_exif_orientation(exif, length);
#else
    (void)s;
#endif
    return 1;
}

/* Reads the chunks after the image data, giving up quietly on damage there. Its jump buffer stays installed after it
 * returns, so only libpng calls that cannot fail (png_get_*, png_destroy_*) may follow it. */
static void read_end(png_state *s) {
    if (setjmp(png_jmpbuf(s->png))) return;
    png_read_end(s->png, s->info);
}

static lens_status decode(png_state *s, int64_t max_pixels, int *orientation) {
    png_structp png = s->png;
    png_infop info = s->info;
    png_set_read_fn(png, s, on_read);
    /* lens applies its own limit (max_pixels) and wants PIL's answer on big images, not libpng's default cap. */
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    lens_status st = img_check_size(s->name, w, h, max_pixels);
    if (st != LENS_OK) return st;

    /* PIL opens 16-bit grey as mode "I" (values 0..65535); convert("RGB") clamps them to 255. */
    const int grey16 = depth == 16 && color == PNG_COLOR_TYPE_GRAY;
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16 && !grey16) png_set_strip_16(png); /* keeps the high byte, as PIL's "RGB;16B" unpacker */
    png_set_strip_alpha(png);                          /* also drops the alpha palette_to_rgb makes from tRNS */
    if (!grey16 && (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA)) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t rowbytes = png_get_rowbytes(png, info);
    size_t expected = grey16 ? (size_t)w * 2 : (size_t)w * 3;
    if (rowbytes != expected)
        return core_fail(LENS_ERR_FORMAT, "%s: unexpected PNG row size %zu for width %u", s->name, rowbytes,
                         (unsigned)w);
    st = img_alloc(&s->image, (int)w, (int)h);
    if (st != LENS_OK) return core_fail_context(st, "%s", s->name);
    s->rows = malloc(sizeof *s->rows * h);
    if (!s->rows) return core_fail(LENS_ERR_OUT_OF_MEMORY, "%s: out of memory", s->name);
    uint8_t *target = s->image.rgb;
    if (grey16) {
        s->pixels = malloc(rowbytes * h);
        if (!s->pixels) return core_fail(LENS_ERR_OUT_OF_MEMORY, "%s: out of memory", s->name);
        target = s->pixels;
    }
    for (png_uint_32 y = 0; y < h; y++) s->rows[y] = target + (size_t)y * rowbytes;
    png_read_image(png, s->rows);
    /* eXIf may come after the image data; PIL looks there too, and ignores damage after the pixels. */
    read_end(s);
    *orientation = exif_orientation(s);

    if (grey16) {
        for (size_t i = 0; i < (size_t)w * h; i++) {
            unsigned v = (unsigned)s->pixels[2 * i] << 8 | s->pixels[2 * i + 1]; /* big-endian in PNG */
            uint8_t g = v > 255 ? 255 : (uint8_t)v;
            s->image.rgb[3 * i] = s->image.rgb[3 * i + 1] = s->image.rgb[3 * i + 2] = g;
        }
    }
    return LENS_OK;
}

lens_status img_decode_png(const uint8_t *data, size_t size, const char *name, int64_t max_pixels, img_image *out,
                           int *orientation) {
    *orientation = 1;
    /* The limit is checked from the IHDR bytes before libpng reads on (it reads every chunk up to the first IDAT). */
    if (size >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        int64_t w = (int64_t)data[16] << 24 | data[17] << 16 | data[18] << 8 | data[19];
        int64_t h = (int64_t)data[20] << 24 | data[21] << 16 | data[22] << 8 | data[23];
        if (max_pixels > 0 && w > 0 && h > 0 && w * h > max_pixels) return img_check_size(name, w, h, max_pixels);
    }
    /* On the heap: everything libpng's longjmp may skip over is reached through this one pointer. */
    png_state *s = calloc(1, sizeof *s);
    if (!s) return core_fail(LENS_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    s->name = name;
    s->data = data;
    s->size = size;
    s->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, on_error, on_warning);
    if (s->png) s->info = png_create_info_struct(s->png);
    lens_status st;
    if (!s->png || !s->info) {
        st = core_fail(LENS_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    } else if (setjmp(png_jmpbuf(s->png))) {
        st = core_fail(LENS_ERR_FORMAT, "%s: %s", name, s->message[0] ? s->message : "corrupt PNG");
    } else {
        st = decode(s, max_pixels, orientation);
    }
    png_destroy_read_struct(s->png ? &s->png : NULL, s->info ? &s->info : NULL, NULL);
    free(s->rows);
    free(s->pixels);
    if (st == LENS_OK) *out = s->image;
    else img_free(&s->image);
    free(s);
    return st;
}
