/* act_avx2.c — the activation kernels of act_body.h built with 32-byte vectors (compiled with AVX2/FMA flags;
 * called through kernels/act.c only when the CPU has AVX2 and FMA). */
#define ACT_VBYTES 32
#define ACT_SUFFIX avx2
#include "../act_body.h"
