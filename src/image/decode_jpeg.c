/* decode_jpeg.c — JPEG through libjpeg-turbo with the settings PIL uses (ISLOW DCT, fancy upsampling, no scaling), so
 * pixels match PIL's exactly. Errors longjmp back here instead of exiting; running out of data before the
 * end-of-image marker is an error, as in PIL ("image file is truncated"). Grayscale and CMYK become RGB as PIL's
 * convert("RGB") does. Also fetches the EXIF orientation from the first APP1 "Exif" segment. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "image.h"

typedef struct jpeg_state {
    struct jpeg_error_mgr err; /* first, so the error manager pointer is the state pointer */
    jmp_buf jump;
    const char *name;
    int hit_eof;        /* the source manager ran out of data and inserted a fake EOI */
    int too_many_scans; /* a progressive file with more scans than any real encoder writes */
    uint8_t *row;       /* a CMYK or grayscale scanline */
    img_image image;
    struct jpeg_decompress_struct cinfo;
} jpeg_state;

static void on_error(j_common_ptr cinfo) {
    jpeg_state *s = (jpeg_state *)cinfo->err;
    longjmp(s->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level) {
    jpeg_state *s = (jpeg_state *)cinfo->err;
    /* Warnings (level -1) are ignored, as PIL does, except running out of data. */
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) s->hit_eof = 1;
}

static void on_output(j_common_ptr cinfo) { (void)cinfo; }

/* A progressive JPEG of thousands of tiny scans takes minutes to decode; real encoders write about ten. */
#define JPEG_MAX_SCANS 500

static void on_progress(j_common_ptr cinfo) {
    jpeg_state *s = (jpeg_state *)cinfo->err;
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > JPEG_MAX_SCANS) {
        s->too_many_scans = 1;
        longjmp(s->jump, 1);
    }
}

/* PIL reads Adobe CMYK as inverted ("CMYK;I"), then converts with r = (255 - k) - (c * (255 - k)) / 255, where the
 * division is its rounded MULDIV255. */
static uint8_t cmyk_channel(uint8_t stored_c, uint8_t stored_k) {
    int c = 255 - stored_c, nk = stored_k; /* nk = 255 - k, k = 255 - stored_k */
    int t = c * nk + 128;
    int v = nk - (((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v);
}

static lens_status decode(jpeg_state *s, const uint8_t *data, size_t size, int64_t max_pixels, int *orientation) {
    struct jpeg_decompress_struct *cinfo = &s->cinfo;
    jpeg_mem_src(cinfo, data, (unsigned long)size);
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
    if (jpeg_read_header(cinfo, TRUE) != JPEG_HEADER_OK)
        return core_fail(LENS_ERR_FORMAT, "%s: JPEG has no image", s->name);
    if (s->hit_eof) return core_fail(LENS_ERR_FORMAT, "%s: image file is truncated (in the JPEG header)", s->name);
    lens_status st = img_check_size(s->name, cinfo->image_width, cinfo->image_height, max_pixels);
    if (st != LENS_OK) return st;

    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        /* PIL takes the first APP1 that starts with "Exif\0". */
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 5 && memcmp(m->data, "Exif\0", 5) == 0) {
            *orientation = img_exif_orientation(m->data, m->data_length);
            break;
        }
    }

    int components = cinfo->num_components;
    if (components == 1) cinfo->out_color_space = JCS_GRAYSCALE;
    else if (components == 3) cinfo->out_color_space = JCS_RGB;
    else if (components == 4) cinfo->out_color_space = JCS_CMYK;
    else return core_fail(LENS_ERR_UNSUPPORTED, "%s: JPEG with %d components is not supported", s->name, components);
    cinfo->dct_method = JDCT_ISLOW;
    cinfo->do_fancy_upsampling = TRUE;
    cinfo->scale_num = cinfo->scale_denom = 1;

    jpeg_start_decompress(cinfo);
    if (s->hit_eof) return core_fail(LENS_ERR_FORMAT, "%s: image file is truncated", s->name);
    const int w = (int)cinfo->output_width, h = (int)cinfo->output_height;
    if (cinfo->output_components != components)
        return core_fail(LENS_ERR_FORMAT, "%s: JPEG decoder gave %d components for %d", s->name,
                         cinfo->output_components, components);
    st = img_alloc(&s->image, w, h);
    if (st != LENS_OK) return core_fail_context(st, "%s", s->name);
    if (components != 3) {
        s->row = malloc((size_t)w * components);
        if (!s->row) return core_fail(LENS_ERR_OUT_OF_MEMORY, "%s: out of memory", s->name);
    }
    while ((int)cinfo->output_scanline < h) {
        int y = (int)cinfo->output_scanline;
        uint8_t *dst = s->image.rgb + (size_t)y * w * 3;
        JSAMPROW row = components == 3 ? dst : s->row;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1)
            return core_fail(LENS_ERR_FORMAT, "%s: JPEG decoder stopped at row %d of %d", s->name, y, h);
        if (components == 1) {
            for (int x = 0; x < w; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = s->row[x];
        } else if (components == 4) {
            for (int x = 0; x < w; x++) {
                const uint8_t *p = s->row + 4 * (size_t)x;
                dst[3 * x] = cmyk_channel(p[0], p[3]);
                dst[3 * x + 1] = cmyk_channel(p[1], p[3]);
                dst[3 * x + 2] = cmyk_channel(p[2], p[3]);
            }
        }
    }
    /* libjpeg pads missing data with grey and warns; PIL refuses the image instead. */
    if (s->hit_eof) return core_fail(LENS_ERR_FORMAT, "%s: image file is truncated", s->name);
    /* PIL's suspending reader cannot finish the last scanlines without the marker after them, so it refuses a file
     * that lacks only its EOI; so does lens. */
    jpeg_finish_decompress(cinfo);
    if (s->hit_eof) return core_fail(LENS_ERR_FORMAT, "%s: image file is truncated (no end-of-image marker)", s->name);
    return LENS_OK;
}

lens_status img_decode_jpeg(const uint8_t *data, size_t size, const char *name, int64_t max_pixels, img_image *out,
                            int *orientation) {
    *orientation = 1;
    /* On the heap so nothing the decoder touches between setjmp and longjmp lives in a local variable. */
    jpeg_state *s = calloc(1, sizeof *s);
    if (!s) return core_fail(LENS_ERR_OUT_OF_MEMORY, "%s: out of memory", name);
    s->name = name;
    s->cinfo.err = jpeg_std_error(&s->err);
    s->err.error_exit = on_error;
    s->err.emit_message = on_message;
    s->err.output_message = on_output;
    struct jpeg_progress_mgr progress = {.progress_monitor = on_progress};
    lens_status st;
    if (setjmp(s->jump)) {
        char message[JMSG_LENGTH_MAX];
        s->err.format_message((j_common_ptr)&s->cinfo, message);
        if (s->too_many_scans)
            st = core_fail(LENS_ERR_LIMIT, "%s: progressive JPEG has more than %d scans", name, JPEG_MAX_SCANS);
        else
            st = core_fail(LENS_ERR_FORMAT, "%s: %s", name, message);
    } else {
        jpeg_create_decompress(&s->cinfo);
        s->cinfo.progress = &progress;
        st = decode(s, data, size, max_pixels, orientation);
    }
    jpeg_destroy_decompress(&s->cinfo);
    free(s->row);
    if (st == LENS_OK) *out = s->image;
    else img_free(&s->image);
    free(s);
    return st;
}
