/* conv_avx2.c — the convolution kernels of conv_body.h built with 32-byte vectors (compiled with AVX2/FMA flags;
 * called through kernels/conv.c only when the CPU has AVX2 and FMA). */
#define CONV_VBYTES 32
#define CONV_SUFFIX avx2
#include "../conv_body.h"
