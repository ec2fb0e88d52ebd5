/* lens.h — the public C API of lens, an image-classification engine.
 *
 * Conventions (SQLite-style):
 * - Handles are opaque. Every lens_*_free(NULL) is a harmless no-op.
 * - Every call that can fail returns a lens_status; on failure lens_last_error() gives a one-line message that says
 *   what and where ("model.onnx: node 'Conv_12': op 'DeformConv' is not supported").
 * - Each function's comment says who owns what it returns and until when.
 * - Thread-safety: distinct handles may be used from distinct threads at once. One lens_model must not be used by two
 *   threads at the same time (it owns its activation arena and thread pool); use one model per thread instead.
 */
#ifndef LENS_H
#define LENS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define LENS_API __declspec(dllexport)
#else
#define LENS_API __attribute__((visibility("default")))
#endif

typedef enum lens_status {
    LENS_OK = 0,
    LENS_ERR_INVALID_ARGUMENT = 1, /* a caller passed something unusable */
    LENS_ERR_IO = 2,               /* a file could not be opened or read */
    LENS_ERR_FORMAT = 3,           /* a file is malformed or truncated */
    LENS_ERR_UNSUPPORTED = 4,      /* valid input that lens does not implement */
    LENS_ERR_OUT_OF_MEMORY = 5,
    LENS_ERR_SHAPE = 6,            /* tensor shapes do not fit together */
    LENS_ERR_LIMIT = 7             /* input exceeds a configured limit (e.g. image pixels) */
} lens_status;

/* Element types, numbered as ONNX's TensorProto.DataType. */
typedef enum lens_dtype {
    LENS_DTYPE_UNDEFINED = 0,
    LENS_DTYPE_FLOAT32 = 1,
    LENS_DTYPE_UINT8 = 2,
    LENS_DTYPE_INT8 = 3,
    LENS_DTYPE_UINT16 = 4,
    LENS_DTYPE_INT16 = 5,
    LENS_DTYPE_INT32 = 6,
    LENS_DTYPE_INT64 = 7,
    LENS_DTYPE_STRING = 8,
    LENS_DTYPE_BOOL = 9,
    LENS_DTYPE_FLOAT16 = 10,
    LENS_DTYPE_FLOAT64 = 11,
    LENS_DTYPE_UINT32 = 12,
    LENS_DTYPE_UINT64 = 13,
    LENS_DTYPE_BFLOAT16 = 16
} lens_dtype;

/* The message of the last failed call on this thread. Owned by lens; valid until the next lens call on this thread.
 * Never NULL (empty when nothing failed). */
LENS_API const char *lens_last_error(void);

/* A short name of a status ("format error"). Static storage. */
LENS_API const char *lens_status_name(lens_status status);

/* ---- Models --------------------------------------------------------------------------------------------------- */

typedef struct lens_model lens_model;

typedef struct lens_model_options {
    int threads; /* worker threads for inference; 0 = number of physical cores */
} lens_model_options;

/* Loads a model file (ONNX). opts may be NULL for defaults. On success *out owns the model: free it with
 * lens_model_free. The file is memory-mapped and stays mapped until lens_model_free. */
LENS_API lens_status lens_model_load(const char *path, const lens_model_options *opts, lens_model **out);
LENS_API void lens_model_free(lens_model *model);

/* Describes one model input or output. Pointers are owned by the model and valid until lens_model_free.
 * A dimension of -1 is dynamic (the batch dimension, chosen at run time). */
typedef struct lens_tensor_info {
    const char *name;
    lens_dtype dtype;
    int rank;
    const int64_t *dims;
} lens_tensor_info;

LENS_API int lens_model_input_count(const lens_model *model);
LENS_API int lens_model_output_count(const lens_model *model);
LENS_API lens_status lens_model_input_info(const lens_model *model, int index, lens_tensor_info *out);
LENS_API lens_status lens_model_output_info(const lens_model *model, int index, lens_tensor_info *out);

/* Number of classes (size of the last dimension of the first output), or 0 when unknown before a run. */
LENS_API int64_t lens_model_class_count(const lens_model *model);

/* The label of a class: from model metadata, from lens_model_set_labels, or the built-in ImageNet-1k names when the
 * model has 1000 classes. Returns NULL when there is none. Owned by the model; valid until lens_model_free or the
 * next lens_model_set_labels. */
LENS_API const char *lens_model_label(const lens_model *model, int64_t index);

/* Reads labels from a text file, one per line, replacing the model's. */
LENS_API lens_status lens_model_set_labels(lens_model *model, const char *path);

/* A human-readable summary of the model: format, inputs/outputs, parameter count, weight bytes, op histogram,
 * planned activation bytes at batch 1. As JSON when json != 0. Returns a malloc'd string the caller frees with
 * free(), or NULL on failure. */
LENS_API char *lens_model_describe(lens_model *model, int json);

/* ---- Raw tensors ---------------------------------------------------------------------------------------------- */

/* A dense, C-order float32 tensor. */
typedef struct lens_tensor {
    int rank;
    int64_t dims[8];
    float *data;
} lens_tensor;

/* Runs the model's first input to its first output. input is read-only and borrowed. On success *output receives
 * dims and a malloc'd data buffer the caller frees with free(). */
LENS_API lens_status lens_model_run(lens_model *model, const lens_tensor *input, lens_tensor *output);

/* ---- Images and classification -------------------------------------------------------------------------------- */

typedef enum lens_interpolation {
    LENS_INTERP_BILINEAR = 0, /* PIL's antialiased bilinear (torchvision's default) */
    LENS_INTERP_NEAREST = 1,
    LENS_INTERP_BICUBIC = 2
} lens_interpolation;

/* Preprocessing. Start from lens_preprocess_default() (torchvision's ImageNet eval transform) and change fields. */
typedef struct lens_preprocess {
    int resize_size;          /* shorter side is resized to this (0 = no resize) */
    int crop_size;            /* centre crop, square; 0 = none */
    float crop_fraction;      /* if > 0, resize_size = floor(crop_size / crop_fraction) */
    lens_interpolation interpolation;
    float mean[3];            /* per output channel, applied after scaling (with bgr, mean[0] is blue's) */
    float std[3];
    float scale;              /* pixel values are multiplied by this first (1/255) */
    int bgr;                  /* channel order BGR instead of RGB */
    int apply_exif;           /* honour EXIF orientation (default 1) */
    int64_t max_pixels;       /* more pixels are refused before decoding (default 100,000,000; <= 0: no limit) */
} lens_preprocess;

LENS_API lens_preprocess lens_preprocess_default(void);

/* The preprocessing this model expects: the default, with the crop set to the model's input size when that is fixed
 * (e.g. 299 → resize 342, crop 299, keeping torchvision's 256/224 ratio). */
LENS_API lens_preprocess lens_model_preprocess(const lens_model *model);

typedef struct lens_prediction {
    int64_t index;
    float score;       /* softmax probability */
    const char *label; /* owned by the model, may be NULL */
} lens_prediction;

/* Classifies one image file. Writes up to k predictions, most likely first, to out (k entries, caller-owned);
 * *count receives how many were written. pre may be NULL for the default. */
LENS_API lens_status lens_classify_file(lens_model *model, const char *path, const lens_preprocess *pre, int k,
                                        lens_prediction *out, int *count);

/* As lens_classify_file, from an interleaved 8-bit RGB buffer (width*height*3 bytes, rows stride bytes apart). */
LENS_API lens_status lens_classify_rgb(lens_model *model, const uint8_t *rgb, int width, int height, size_t stride,
                                       const lens_preprocess *pre, int k, lens_prediction *out, int *count);

/* Decodes and preprocesses an image file into a float32 [3, crop, crop] tensor (CHW). *out_data is malloc'd; the
 * caller frees it. *out_h and *out_w receive the tensor's height and width. */
LENS_API lens_status lens_image_load_tensor(const char *path, const lens_preprocess *pre, float **out_data,
                                            int *out_h, int *out_w);

/* Turns logits into softmax probabilities and writes the top k (sorted, most likely first). Returns the count. */
LENS_API int lens_top_k(const lens_model *model, const float *logits, int64_t n, int k, lens_prediction *out);

/* Runs a batch of preprocessed images ([n, 3, H, W], C order) and returns logits [n, classes] in a malloc'd buffer
 * the caller frees. *classes receives the class count. */
LENS_API lens_status lens_model_run_batch(lens_model *model, const float *images, int n, int height, int width,
                                          float **logits, int64_t *classes);

/* ---- Profiling ------------------------------------------------------------------------------------------------- */

/* Starts (enable != 0) or stops timing every layer of the model's runs; starting resets the accumulated times. */
LENS_API void lens_model_set_profiling(lens_model *model, int enable);

/* Time per op type and per layer accumulated since profiling started, slowest first; as JSON when json != 0.
 * Returns a malloc'd string the caller frees with free(), or NULL when nothing ran or on failure. */
LENS_API char *lens_model_profile_report(lens_model *model, int json);

#ifdef __cplusplus
}
#endif
#endif
