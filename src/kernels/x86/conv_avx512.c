/* conv_avx512.c — the convolution kernels of conv_body.h built with 64-byte vectors (compiled with AVX-512 flags;
 * called through kernels/conv.c only when the CPU has AVX-512F). */
#define CONV_VBYTES 64
#define CONV_SUFFIX avx512
#include "../conv_body.h"
