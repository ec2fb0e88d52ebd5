/* cpu.c — run-time CPU feature detection: cpuid for what the chip has, xgetbv for what the OS saves. */
#include "core.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static core_cpu detect(void) {
    core_cpu c = {0};
    unsigned a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d)) return c;
    int osxsave = (cx >> 27) & 1, avx = (cx >> 28) & 1;
    if (!osxsave || !avx) return c;
    uint64_t xcr0 = read_xcr0();
    int ymm_ok = (xcr0 & 0x6) == 0x6, zmm_ok = (xcr0 & 0xe6) == 0xe6;
    if (!ymm_ok) return c;
    c.fma = (cx >> 12) & 1;
    c.f16c = (cx >> 29) & 1;
    if (__get_cpuid_max(0, NULL) < 7) return c;
    __cpuid_count(7, 0, a, b, cx, d);
    c.avx2 = (b >> 5) & 1;
    if (zmm_ok) {
        c.avx512f = (b >> 16) & 1;
        c.avx512dq = (b >> 17) & 1;
        c.avx512bw = (b >> 30) & 1;
        c.avx512vl = (b >> 31) & 1;
        c.avx512_vnni = (cx >> 11) & 1;
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        c.avx512_bf16 = (a1 >> 5) & 1;
    }
    return c;
}
#else
static core_cpu detect(void) {
    core_cpu c = {0};
#if defined(__aarch64__)
    c.neon = true;
#endif
    return c;
}
#endif

const core_cpu *core_cpu_features(void) {
    static core_cpu cpu;
    static int done;
    if (!__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
        core_cpu c = detect();
        cpu = c;
        __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    }
    return &cpu;
}
