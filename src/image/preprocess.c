/* preprocess.c — torchvision's eval transform on a decoded image: Resize(int) on the shorter side, CenterCrop with
 * torchvision's rounding and zero padding, ToTensor (x / 255 in float32) and Normalize, into a CHW float tensor.
 * Only the cropped window of the resized image is ever computed (img_resize_window), so a large resize_size costs
 * no more memory than its crop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

/* Sizes above this are refused: no classifier input is this large, and it keeps every product below in range. */
#define IMG_MAX_SIDE (1 << 20)

lens_preprocess img_preprocess_default(void) {
    lens_preprocess p;
    memset(&p, 0, sizeof p);
    p.resize_size = 256;
    p.crop_size = 224;
    p.crop_fraction = 0.0f;
    p.interpolation = LENS_INTERP_BILINEAR;
    p.mean[0] = 0.485f;
    p.mean[1] = 0.456f;
    p.mean[2] = 0.406f;
    p.std[0] = 0.229f;
    p.std[1] = 0.224f;
    p.std[2] = 0.225f;
    p.scale = 1.0f / 255.0f;
    p.bgr = 0;
    p.apply_exif = 1;
    p.max_pixels = 100000000;
    return p;
}

lens_status img_resize_target(const lens_preprocess *pre, int *resize_size) {
    if (!pre) return core_fail(LENS_ERR_INVALID_ARGUMENT, "preprocess: no settings");
    if (pre->resize_size < 0 || pre->resize_size > IMG_MAX_SIDE)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "preprocess: resize_size %d is out of range (0..%d)",
                         pre->resize_size, IMG_MAX_SIDE);
    if (pre->crop_size < 0 || pre->crop_size > IMG_MAX_SIDE)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "preprocess: crop_size %d is out of range (0..%d)", pre->crop_size,
                         IMG_MAX_SIDE);
    if (pre->interpolation != LENS_INTERP_BILINEAR && pre->interpolation != LENS_INTERP_NEAREST &&
        pre->interpolation != LENS_INTERP_BICUBIC)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "preprocess: unknown interpolation %d", (int)pre->interpolation);
    for (int c = 0; c < 3; c++)
        if (!isfinite(pre->mean[c]) || !isfinite(pre->std[c]) || pre->std[c] == 0.0f)
            return core_fail(LENS_ERR_INVALID_ARGUMENT, "preprocess: mean/std of channel %d is not usable (%g, %g)", c,
                             (double)pre->mean[c], (double)pre->std[c]);
    if (!isfinite(pre->scale))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "preprocess: scale is not finite");
    if (!(pre->crop_fraction >= 0.0f) || !isfinite(pre->crop_fraction))
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "preprocess: crop_fraction %g is invalid",
                         (double)pre->crop_fraction);
    if (pre->crop_fraction == 0.0f) {
        *resize_size = pre->resize_size;
        return LENS_OK;
    }
    if (pre->crop_size == 0)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "preprocess: crop_fraction needs a crop_size");
    /* timm computes floor(crop / crop_pct) in double from a decimal such as 0.875 or 0.9. Dividing by the float
     * nearest that decimal can land just below an integer (256 / 0.8f = 319.99999), so recover the decimal first:
     * the shortest one that rounds to the same float. */
    double fraction = pre->crop_fraction;
    for (int digits = 1; digits <= 9; digits++) {
        char text[32];
        snprintf(text, sizeof text, "%.*g", digits, (double)pre->crop_fraction);
        double decimal = strtod(text, NULL);
        if ((float)decimal == pre->crop_fraction) {
            fraction = decimal;
            break;
        }
    }
    double size = floor(pre->crop_size / fraction);
    if (!(size >= 1.0) || size > IMG_MAX_SIDE)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "preprocess: crop_size %d / crop_fraction %g gives resize %g",
                         pre->crop_size, (double)pre->crop_fraction, size);
    *resize_size = (int)size;
    return LENS_OK;
}

/* Where the output tensor sits in the resized image. */
typedef struct crop_plan {
    int resized_w, resized_h; /* after Resize (the image's own size when there is none) */
    int out_w, out_h;         /* the tensor's spatial size */
    int off_x, off_y;         /* the tensor's top-left in resized coordinates (negative where zero-padded) */
    int win_x, win_y, win_w, win_h; /* the part of the tensor inside the resized image, resized coordinates */
} crop_plan;

/* Python's int(round(d / 2.0)) for d >= 0: halves round to even. */
static int half_round_even(int d) {
    int half = d / 2;
    return (d & 1) && (half & 1) ? half + 1 : half;
}

static void plan_axis(int size, int crop, int *out, int *off, int *win0, int *win_len) {
    if (crop <= 0) {
        *out = size;
        *off = 0;
    } else if (crop > size) {
        /* torchvision pads (crop - size) // 2 before, the rest after, then the crop is the whole padded image. */
        *out = crop;
        *off = -((crop - size) / 2);
    } else {
        *out = crop;
        *off = half_round_even(size - crop);
    }
    *win0 = *off < 0 ? 0 : *off;
    int end = *off + *out < size ? *off + *out : size;
    *win_len = end - *win0;
}

static lens_status make_plan(const img_image *img, const lens_preprocess *pre, crop_plan *plan) {
    if (!img || !img->rgb || img->width <= 0 || img->height <= 0)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "preprocess: empty image");
    int resize;
    lens_status st = img_resize_target(pre, &resize);
    if (st != LENS_OK) return st;
    const int w = img->width, h = img->height;
    plan->resized_w = w;
    plan->resized_h = h;
    if (resize > 0) {
        /* torchvision 0.14: the shorter side becomes resize, the longer int(resize * long / short). */
        const int shorter = w <= h ? w : h, longer = w <= h ? h : w;
        double scaled = (double)((int64_t)resize * longer) / shorter;
        if (scaled > (double)IMG_MAX_SIDE * 16)
            return core_fail(LENS_ERR_LIMIT, "preprocess: resizing %dx%d to %d on the shorter side is too large", w, h,
                             resize);
        const int new_long = (int)scaled;
        plan->resized_w = w <= h ? resize : new_long;
        plan->resized_h = w <= h ? new_long : resize;
    }
    plan_axis(plan->resized_w, pre->crop_size, &plan->out_w, &plan->off_x, &plan->win_x, &plan->win_w);
    plan_axis(plan->resized_h, pre->crop_size, &plan->out_h, &plan->off_y, &plan->win_y, &plan->win_h);
    return img_check_size("preprocess: output", plan->out_w, plan->out_h, pre->max_pixels);
}

lens_status img_output_size(const img_image *img, const lens_preprocess *pre, int *out_h, int *out_w) {
    crop_plan plan;
    lens_status st = make_plan(img, pre, &plan);
    if (st != LENS_OK) return st;
    *out_h = plan.out_h;
    *out_w = plan.out_w;
    return LENS_OK;
}

/* The resized window of the plan. */
static lens_status resized_window(const img_image *img, const lens_preprocess *pre, const crop_plan *plan,
                                  img_image *window) {
    return img_resize_window(img, plan->resized_w, plan->resized_h, plan->win_x, plan->win_y, plan->win_w,
                             plan->win_h, pre->interpolation, window);
}

lens_status img_to_tensor(const img_image *img, const lens_preprocess *pre, float *out, int out_h, int out_w) {
    if (!out) return core_fail(LENS_ERR_INVALID_ARGUMENT, "preprocess: no output buffer");
    crop_plan plan;
    lens_status st = make_plan(img, pre, &plan);
    if (st != LENS_OK) return st;
    if (plan.out_h != out_h || plan.out_w != out_w)
        return core_fail(LENS_ERR_SHAPE, "preprocess: output is %dx%d but the buffer is for %dx%d", plan.out_h,
                         plan.out_w, out_h, out_w);
    img_image window;
    st = resized_window(img, pre, &plan, &window);
    if (st != LENS_OK) return st;

    /* ToTensor divides by 255 in float32; dividing (rather than multiplying by 1/255f) keeps the result bit-identical
     * to torchvision's for the default scale. */
    float table[3][256];
    for (int oc = 0; oc < 3; oc++)
        for (int v = 0; v < 256; v++) {
            float x = pre->scale == 1.0f / 255.0f ? (float)v / 255.0f : (float)v * pre->scale;
            table[oc][v] = (x - pre->mean[oc]) / pre->std[oc];
        }
    const size_t plane = (size_t)out_h * out_w;
    for (int oc = 0; oc < 3; oc++) {
        const int src_c = pre->bgr ? 2 - oc : oc;
        float *dst = out + plane * oc;
        for (int y = 0; y < out_h; y++) {
            int ry = y + plan.off_y - plan.win_y;
            for (int x = 0; x < out_w; x++) {
                int rx = x + plan.off_x - plan.win_x;
                uint8_t v = 0; /* zero padding, normalised like any pixel, as torchvision pads before ToTensor */
                if (ry >= 0 && ry < window.height && rx >= 0 && rx < window.width)
                    v = window.rgb[((size_t)ry * window.width + rx) * 3 + src_c];
                dst[(size_t)y * out_w + x] = table[oc][v];
            }
        }
    }
    img_free(&window);
    return LENS_OK;
}

lens_status img_preprocess_pixels(const img_image *img, const lens_preprocess *pre, img_image *out) {
    if (!out) return core_fail(LENS_ERR_INVALID_ARGUMENT, "preprocess: no output image");
    out->width = out->height = 0;
    out->rgb = NULL;
    crop_plan plan;
    lens_status st = make_plan(img, pre, &plan);
    if (st != LENS_OK) return st;
    img_image window;
    st = resized_window(img, pre, &plan, &window);
    if (st != LENS_OK) return st;
    if (window.width == plan.out_w && window.height == plan.out_h) {
        *out = window;
        return LENS_OK;
    }
    st = img_alloc(out, plan.out_w, plan.out_h);
    if (st == LENS_OK) {
        memset(out->rgb, 0, (size_t)plan.out_w * plan.out_h * 3);
        for (int y = 0; y < window.height; y++)
            memcpy(out->rgb + ((size_t)(plan.win_y - plan.off_y + y) * plan.out_w + (plan.win_x - plan.off_x)) * 3,
                   window.rgb + (size_t)y * window.width * 3, (size_t)window.width * 3);
    }
    img_free(&window);
    return st;
}

lens_status img_load_tensor(const char *path, const lens_preprocess *pre, float **out, int *out_h, int *out_w) {
    if (!out || !out_h || !out_w) return core_fail(LENS_ERR_INVALID_ARGUMENT, "img_load_tensor: no output");
    *out = NULL;
    *out_h = *out_w = 0;
    lens_preprocess defaults = img_preprocess_default();
    if (!pre) pre = &defaults;
    int resize;
    lens_status st = img_resize_target(pre, &resize); /* bad settings fail before the file is read */
    if (st != LENS_OK) return st;
    img_image img;
    st = img_decode_file(path, pre->apply_exif, pre->max_pixels, &img);
    if (st != LENS_OK) return st;
    int h, w;
    st = img_output_size(&img, pre, &h, &w);
    if (st == LENS_OK) {
        float *data = malloc(sizeof *data * 3 * (size_t)h * w);
        if (!data) st = core_fail(LENS_ERR_OUT_OF_MEMORY, "%s: out of memory for a %dx%d tensor", path, h, w);
        else st = img_to_tensor(&img, pre, data, h, w);
        if (st == LENS_OK) {
            *out = data;
            *out_h = h;
            *out_w = w;
        } else {
            free(data);
        }
    }
    if (st != LENS_OK && st != LENS_ERR_OUT_OF_MEMORY) core_fail_context(st, "%s", path);
    img_free(&img);
    return st;
}
