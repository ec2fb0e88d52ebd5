/* act_avx512.c — the activation kernels of act_body.h built with 64-byte vectors (compiled with AVX-512 flags;
 * called through kernels/act.c only when the CPU has AVX-512F). */
#define ACT_VBYTES 64
#define ACT_SUFFIX avx512
#include "../act_body.h"
