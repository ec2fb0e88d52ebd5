/* npy.c — NumPy .npy files: read (format 1.0–3.0, C order) into malloc'd memory, write (format 1.0). Touches only the
 * files it is given, the caller's tensor and the thread's error message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c reads and writes little-endian data in place"
#endif

#define NPY_MAX_HEADER 65536 /* numpy itself writes a few hundred bytes */

static const struct {
    const char *descr;
    lens_dtype dtype;
} npy_types[] = {
    {"<f4", LENS_DTYPE_FLOAT32}, {"<f8", LENS_DTYPE_FLOAT64}, {"<f2", LENS_DTYPE_FLOAT16}, {"<i8", LENS_DTYPE_INT64},
    {"<i4", LENS_DTYPE_INT32},   {"<i2", LENS_DTYPE_INT16},   {"<u2", LENS_DTYPE_UINT16},  {"<u4", LENS_DTYPE_UINT32},
    {"<u8", LENS_DTYPE_UINT64},  {"|u1", LENS_DTYPE_UINT8},   {"|i1", LENS_DTYPE_INT8},    {"|b1", LENS_DTYPE_BOOL},
};

/* ---- Header: a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } --------- */

typedef struct header_parser {
    const char *p, *end;
} header_parser;

static void skip_space(header_parser *h) {
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r')) h->p++;
}

static bool accept(header_parser *h, char c) {
    skip_space(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return true;
    }
    return false;
}

/* A quoted string (no escapes: numpy's keys and descrs have none) copied into buf. */
static bool parse_string(header_parser *h, char *buf, size_t size) {
    skip_space(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return false;
    char quote = *h->p++;
    size_t n = 0;
    while (h->p < h->end && *h->p != quote) {
        if (n + 1 >= size) return false;
        buf[n++] = *h->p++;
    }
    if (h->p >= h->end) return false;
    h->p++;
    buf[n] = 0;
    return true;
}

static bool parse_word(header_parser *h, const char *word) {
    skip_space(h);
    size_t n = strlen(word);
    if ((size_t)(h->end - h->p) < n || memcmp(h->p, word, n)) return false;
    h->p += n;
    return true;
}

static bool parse_shape(header_parser *h, tensor *t) {
    if (!accept(h, '(')) return false;
    t->rank = 0;
    for (;;) {
        if (accept(h, ')')) return true;
        skip_space(h);
        if (h->p >= h->end || *h->p < '0' || *h->p > '9') return false;
        int64_t v = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *h->p - '0', &v)) return false;
            h->p++;
        }
        if (h->p < h->end && *h->p == 'L') h->p++; /* Python 2 longs */
        if (t->rank == TENSOR_MAX_RANK) return false;
        t->dims[t->rank++] = v;
        if (!accept(h, ',')) return accept(h, ')');
    }
}

static lens_status parse_header(const char *text, size_t len, const char *path, tensor *t) {
    header_parser h = {text, text + len};
    char key[32], descr[16];
    bool has_descr = false, has_order = false, has_shape = false, fortran = false;
    if (!accept(&h, '{')) goto bad;
    while (!accept(&h, '}')) {
        if (!parse_string(&h, key, sizeof key) || !accept(&h, ':')) goto bad;
        if (!strcmp(key, "descr")) {
            if (!parse_string(&h, descr, sizeof descr)) goto bad;
            has_descr = true;
        } else if (!strcmp(key, "fortran_order")) {
            if (parse_word(&h, "True")) fortran = true;
            else if (!parse_word(&h, "False")) goto bad;
            has_order = true;
        } else if (!strcmp(key, "shape")) {
            if (!parse_shape(&h, t)) {
                if (t->rank == TENSOR_MAX_RANK)
                    return core_fail(LENS_ERR_UNSUPPORTED, "%s: more than %d dimensions", path, TENSOR_MAX_RANK);
                goto bad;
            }
            has_shape = true;
        } else {
            goto bad;
        }
        if (!accept(&h, ',')) {
            if (!accept(&h, '}')) goto bad;
            break;
        }
    }
    if (!has_descr || !has_order || !has_shape) goto bad;
    if (fortran) return core_fail(LENS_ERR_UNSUPPORTED, "%s: Fortran-order arrays are not supported", path);
    for (size_t i = 0; i < sizeof npy_types / sizeof *npy_types; i++)
        if (!strcmp(descr, npy_types[i].descr)) {
            t->dtype = npy_types[i].dtype;
            return LENS_OK;
        }
    return core_fail(LENS_ERR_UNSUPPORTED, "%s: dtype '%s' is not supported", path, descr);
bad:
    return core_fail(LENS_ERR_FORMAT, "%s: malformed .npy header at byte %zu", path, (size_t)(h.p - text) + 10);
}

/* ---- Read ------------------------------------------------------------------------------------------------------ */

static lens_status read_exact(FILE *f, void *buf, size_t n, const char *path, const char *what) {
    if (fread(buf, 1, n, f) == n) return LENS_OK;
    if (ferror(f)) return core_fail(LENS_ERR_IO, "%s: %s", path, strerror(errno));
    return core_fail(LENS_ERR_FORMAT, "%s: truncated %s", path, what);
}

lens_status npy_read(const char *path, tensor *out) {
    if (!path || !out) return core_fail(LENS_ERR_INVALID_ARGUMENT, "npy_read: NULL argument");
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return core_fail(LENS_ERR_IO, "%s: %s", path, strerror(errno));
    lens_status st;
    unsigned char pre[12];
    char *header = NULL;
    void *data = NULL;
    tensor t = {0};
    struct stat sb;
    if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode)) {
        st = core_fail(LENS_ERR_IO, "%s: not a readable regular file", path);
        goto done;
    }
    if (sb.st_size == 0) {
        st = core_fail(LENS_ERR_FORMAT, "%s: empty file", path);
        goto done;
    }
    if ((st = read_exact(f, pre, 10, path, "header"))) goto done;
    if (memcmp(pre, "\x93NUMPY", 6)) {
        st = core_fail(LENS_ERR_FORMAT, "%s: not a .npy file", path);
        goto done;
    }
    size_t header_len, prefix = 10;
    if (pre[6] == 1) {
        header_len = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if ((st = read_exact(f, pre + 10, 2, path, "header"))) goto done;
        header_len = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        prefix = 12;
    } else {
        st = core_fail(LENS_ERR_UNSUPPORTED, "%s: .npy format version %d.%d is not supported", path, pre[6], pre[7]);
        goto done;
    }
    if (header_len > NPY_MAX_HEADER) {
        st = core_fail(LENS_ERR_FORMAT, "%s: .npy header of %zu bytes is too long", path, header_len);
        goto done;
    }
    if (!(header = malloc(header_len + 1))) {
        st = core_fail(LENS_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        goto done;
    }
    if ((st = read_exact(f, header, header_len, path, "header"))) goto done;
    header[header_len] = 0;
    if ((st = parse_header(header, header_len, path, &t))) goto done;

    size_t bytes = tensor_bytes(&t);
    uint64_t available = (uint64_t)sb.st_size - (uint64_t)(prefix + header_len);
    char shape[160];
    if (bytes == SIZE_MAX || (uint64_t)bytes != available) {
        st = core_fail(LENS_ERR_FORMAT, "%s: %s %s needs %zu bytes of data, the file has %llu", path,
                       dtype_name(t.dtype), tensor_shape_string(&t, shape, sizeof shape), bytes,
                       (unsigned long long)available);
        goto done;
    }
    if (!(data = malloc(bytes ? bytes : 1))) {
        st = core_fail(LENS_ERR_OUT_OF_MEMORY, "%s: out of memory for %zu bytes", path, bytes);
        goto done;
    }
    if ((st = read_exact(f, data, bytes, path, "data"))) goto done;
    t.data = data;
    data = NULL;
    *out = t;
done:
    free(header);
    free(data);
    fclose(f);
    return st;
}

/* ---- Write ----------------------------------------------------------------------------------------------------- */

lens_status npy_write(const char *path, const tensor *t) {
    if (!path || !t) return core_fail(LENS_ERR_INVALID_ARGUMENT, "npy_write: NULL argument");
    const char *descr = NULL;
    for (size_t i = 0; i < sizeof npy_types / sizeof *npy_types; i++)
        if (npy_types[i].dtype == t->dtype) descr = npy_types[i].descr;
    if (!descr) return core_fail(LENS_ERR_UNSUPPORTED, "%s: cannot write %s as .npy", path, dtype_name(t->dtype));
    if (t->rank < 0 || t->rank > TENSOR_MAX_RANK)
        return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: rank %d is out of range", path, t->rank);
    size_t bytes = tensor_bytes(t);
    if (bytes == SIZE_MAX) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: invalid shape", path);
    if (bytes && !t->data) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: tensor has no data", path);

    /* 10 bytes of prefix, then the dict padded with spaces and a newline to a multiple of 64, as numpy does */
    char header[512];
    int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->rank; i++)
        n += snprintf(header + n, sizeof header - (size_t)n, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
    n += snprintf(header + n, sizeof header - (size_t)n, "%s), }", t->rank == 1 ? "," : "");
    size_t total = ((size_t)n + 1 + 10 + 63) / 64 * 64, header_len = total - 10;
    memset(header + n, ' ', header_len - 1 - (size_t)n);
    header[header_len - 1] = '\n';
    unsigned char prefix[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(header_len & 0xff),
                                (unsigned char)(header_len >> 8)};

    FILE *f = fopen(path, "wb");
    if (!f) return core_fail(LENS_ERR_IO, "%s: %s", path, strerror(errno));
    bool ok = fwrite(prefix, 1, sizeof prefix, f) == sizeof prefix && fwrite(header, 1, header_len, f) == header_len &&
              (!bytes || fwrite(t->data, 1, bytes, f) == bytes);
    int e = errno;
    if (fclose(f)) {
        e = errno;
        ok = false;
    }
    if (!ok) return core_fail(LENS_ERR_IO, "%s: write failed: %s", path, strerror(e));
    return LENS_OK;
}
