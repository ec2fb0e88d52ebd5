/* tensor.c — dtype sizes and names, element counts, shape printing, half-precision conversion. Pure functions. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core.h"

size_t dtype_size(lens_dtype dtype) {
    switch (dtype) {
    case LENS_DTYPE_FLOAT32: case LENS_DTYPE_INT32: case LENS_DTYPE_UINT32: return 4;
    case LENS_DTYPE_UINT8: case LENS_DTYPE_INT8: case LENS_DTYPE_BOOL: return 1;
    case LENS_DTYPE_UINT16: case LENS_DTYPE_INT16: case LENS_DTYPE_FLOAT16: case LENS_DTYPE_BFLOAT16: return 2;
    case LENS_DTYPE_INT64: case LENS_DTYPE_FLOAT64: case LENS_DTYPE_UINT64: return 8;
    case LENS_DTYPE_UNDEFINED: case LENS_DTYPE_STRING: return 0;
    }
    return 0;
}

const char *dtype_name(lens_dtype dtype) {
    switch (dtype) {
    case LENS_DTYPE_FLOAT32: return "float32";
    case LENS_DTYPE_UINT8: return "uint8";
    case LENS_DTYPE_INT8: return "int8";
    case LENS_DTYPE_UINT16: return "uint16";
    case LENS_DTYPE_INT16: return "int16";
    case LENS_DTYPE_INT32: return "int32";
    case LENS_DTYPE_INT64: return "int64";
    case LENS_DTYPE_STRING: return "string";
    case LENS_DTYPE_BOOL: return "bool";
    case LENS_DTYPE_FLOAT16: return "float16";
    case LENS_DTYPE_FLOAT64: return "float64";
    case LENS_DTYPE_UINT32: return "uint32";
    case LENS_DTYPE_UINT64: return "uint64";
    case LENS_DTYPE_BFLOAT16: return "bfloat16";
    case LENS_DTYPE_UNDEFINED: break;
    }
    return "undefined";
}

int64_t tensor_numel(const tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0 || __builtin_mul_overflow(n, t->dims[i], &n)) return -1;
    }
    return n;
}

size_t tensor_bytes(const tensor *t) {
    int64_t n = tensor_numel(t);
    size_t bytes;
    if (n < 0 || !core_mul_size((size_t)n, dtype_size(t->dtype), &bytes)) return SIZE_MAX;
    return bytes;
}

bool tensor_same_shape(const tensor *a, const tensor *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

char *tensor_shape_string(const tensor *t, char *buf, size_t size) {
    size_t used = 0;
    if (size == 0) return buf;
    buf[0] = 0;
    used += (size_t)snprintf(buf + used, size - used, "[");
    for (int i = 0; i < t->rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ",%lld" : "%lld", (long long)t->dims[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

int64_t tensor_get_int(const tensor *t, int64_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case LENS_DTYPE_INT64: return ((const int64_t *)d)[i];
    case LENS_DTYPE_INT32: return ((const int32_t *)d)[i];
    case LENS_DTYPE_INT16: return ((const int16_t *)d)[i];
    case LENS_DTYPE_INT8: return ((const int8_t *)d)[i];
    case LENS_DTYPE_UINT8: case LENS_DTYPE_BOOL: return ((const uint8_t *)d)[i];
    case LENS_DTYPE_UINT16: return ((const uint16_t *)d)[i];
    case LENS_DTYPE_UINT32: return ((const uint32_t *)d)[i];
    case LENS_DTYPE_UINT64: return (int64_t)((const uint64_t *)d)[i];
    default: return (int64_t)tensor_get_double(t, i);
    }
}

double tensor_get_double(const tensor *t, int64_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case LENS_DTYPE_FLOAT32: return ((const float *)d)[i];
    case LENS_DTYPE_FLOAT64: return ((const double *)d)[i];
    case LENS_DTYPE_FLOAT16: return core_f16_to_f32(((const uint16_t *)d)[i]);
    case LENS_DTYPE_BFLOAT16: return core_bf16_to_f32(((const uint16_t *)d)[i]);
    case LENS_DTYPE_UINT64: return (double)((const uint64_t *)d)[i];
    case LENS_DTYPE_UNDEFINED: case LENS_DTYPE_STRING: return 0;
    default: return (double)tensor_get_int(t, i);
    }
}

float core_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            float f = ldexpf((float)mant, -24);
            return sign ? -f : f;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t core_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return (uint16_t)half;
}

float core_bf16_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t core_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}
