/* image.h — the image layer's internal header: decoding (JPEG, PNG, WebP, BMP, PPM/PGM/PBM), EXIF orientation,
 * PIL-exact resampling, and torchvision-style preprocessing into a float CHW tensor. Builds on core only.
 *
 * The reference for every pixel this layer produces is Pillow 9.4 + torchvision 0.14: decoding matches
 * Image.open(path).convert("RGB"), resizing matches Image.resize(size, filter) byte for byte, and
 * img_to_tensor matches Resize(n) + CenterCrop(n) + ToTensor() + Normalize(mean, std). */
#ifndef LENS_IMAGE_H
#define LENS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"

/* An interleaved 8-bit RGB image, rows packed (stride = 3 * width). rgb is malloc'd and owned by whoever holds the
 * struct; release it with img_free. */
typedef struct img_image {
    int width, height;
    uint8_t *rgb;
} img_image;

/* ---- Decoding --------------------------------------------------------------------------------------------------- */

/* Decodes an image file into RGB8. The format is sniffed from the content, not the extension. When apply_exif is
 * non-zero, an EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF) other than 1 is applied as
 * PIL.ImageOps.exif_transpose does. Images with more than max_pixels pixels (max_pixels > 0) are refused with
 * LENS_ERR_LIMIT after reading only the header. Errors: LENS_ERR_IO (cannot open or read: "PATH: No such file or
 * directory"), LENS_ERR_FORMAT (corrupt, truncated, empty or unknown: "PATH: ..."), LENS_ERR_UNSUPPORTED (a known
 * format lens does not decode, e.g. GIF, 16-bit BMP, animated WebP). On success *out owns a malloc'd buffer; on
 * failure *out is zeroed. */
lens_status img_decode_file(const char *path, int apply_exif, int64_t max_pixels, img_image *out);

/* As img_decode_file, from size bytes at data (borrowed, only read during the call). name is used in messages
 * (NULL: "<memory>"). */
lens_status img_decode_memory(const void *data, size_t size, const char *name, int apply_exif, int64_t max_pixels,
                              img_image *out);

/* Frees img->rgb and zeroes img. NULL and already-freed images are fine. */
void img_free(img_image *img);

/* Allocates an uninitialised width x height image, checking the size for overflow. */
lens_status img_alloc(img_image *img, int width, int height);

/* The EXIF orientation (1..8) in a TIFF/EXIF block (with or without the "Exif\0\0" prefix), or 1 when there is none
 * or the block is malformed. Every offset is bounds-checked. */
int img_exif_orientation(const uint8_t *data, size_t size);

/* Applies an EXIF orientation (2..8) in place, replacing img's buffer (width and height swap for 5..8). 1 and
 * unknown values leave the image as it is. */
lens_status img_apply_orientation(img_image *img, int orientation);

/* ---- Per-format decoders (dispatched by img_decode_memory; name is for messages) -------------------------------- */

/* Each fills *out and sets *orientation to the file's EXIF orientation (1 when none). They check width*height
 * against max_pixels (when > 0) before any pixel buffer is allocated. */
lens_status img_decode_jpeg(const uint8_t *data, size_t size, const char *name, int64_t max_pixels, img_image *out,
                            int *orientation);
lens_status img_decode_png(const uint8_t *data, size_t size, const char *name, int64_t max_pixels, img_image *out,
                           int *orientation);
lens_status img_decode_webp(const uint8_t *data, size_t size, const char *name, int64_t max_pixels, img_image *out,
                            int *orientation);
lens_status img_decode_bmp(const uint8_t *data, size_t size, const char *name, int64_t max_pixels, img_image *out);
lens_status img_decode_pnm(const uint8_t *data, size_t size, const char *name, int64_t max_pixels, img_image *out);

/* LENS_OK if width x height is a positive size within max_pixels (when > 0) and small enough to allocate as RGB8;
 * otherwise LENS_ERR_LIMIT or LENS_ERR_FORMAT with a message naming the dimensions. */
lens_status img_check_size(const char *name, int64_t width, int64_t height, int64_t max_pixels);

/* ---- Resampling ------------------------------------------------------------------------------------------------- */

/* Resizes to out_w x out_h exactly as Pillow's Image.resize((out_w, out_h), filter) on an RGB image, with no box and
 * no reducing_gap: BILINEAR and BICUBIC (a = -0.5) are the separable, antialiased (support scaled by the downscale
 * factor) two-pass resample in 22-bit fixed point, horizontal pass first; NEAREST is Pillow's affine nearest-neighbour
 * scale. Same size gives a copy. *out owns a new buffer. */
lens_status img_resize(const img_image *in, int out_w, int out_h, lens_interpolation interp, img_image *out);

/* The win_w x win_h window at (x0, y0) of what img_resize(in, out_w, out_h, interp) gives, computing only that
 * window (each output pixel depends only on its own coefficients, so the bytes are identical). */
lens_status img_resize_window(const img_image *in, int out_w, int out_h, int x0, int y0, int win_w, int win_h,
                              lens_interpolation interp, img_image *out);

/* ---- Preprocessing ---------------------------------------------------------------------------------------------- */

/* torchvision's ImageNet eval transform: Resize(256) (shorter side, bilinear), CenterCrop(224), ToTensor,
 * Normalize(mean=(0.485,0.456,0.406), std=(0.229,0.224,0.225)); RGB; apply_exif 1; max_pixels 100,000,000. */
lens_preprocess img_preprocess_default(void);

/* The size resize_size and crop_fraction give for the shorter side (0 = no resize), after validating pre. */
lens_status img_resize_target(const lens_preprocess *pre, int *resize_size);

/* The tensor size img_to_tensor produces for img under pre: crop x crop when crop_size > 0, else the resized (or
 * original) size. */
lens_status img_output_size(const img_image *img, const lens_preprocess *pre, int *out_h, int *out_w);

/* Resize (torchvision Resize(int): shorter side to resize_size, longer side int(size * long / short)), centre crop
 * (torchvision's rounding; zero padding when the crop is larger), then (x * scale - mean) / std into out, a
 * caller-owned float32 [3, out_h, out_w] CHW buffer (channels in BGR order when pre->bgr). out_h and out_w must equal
 * what img_output_size gives (LENS_ERR_SHAPE otherwise). mean[i] and std[i] apply to output channel i, so with bgr
 * set, mean[0] is blue's. */
lens_status img_to_tensor(const img_image *img, const lens_preprocess *pre, float *out, int out_h, int out_w);

/* As img_to_tensor after the resize and crop, stopping before normalisation: writes the uint8 RGB (never BGR) crop
 * into *out (a new image the caller frees with img_free). Used to compare pixels with PIL. */
lens_status img_preprocess_pixels(const img_image *img, const lens_preprocess *pre, img_image *out);

/* Decodes path (honouring pre->apply_exif and pre->max_pixels) and runs img_to_tensor. On success *out is a malloc'd
 * float32 [3, *out_h, *out_w] buffer the caller frees with free(). pre may be NULL for img_preprocess_default(). */
lens_status img_load_tensor(const char *path, const lens_preprocess *pre, float **out, int *out_h, int *out_w);

#endif
