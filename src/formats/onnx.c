/* onnx.c — the ONNX importer: ModelProto → lens graph through the builder API. Initializers whose raw_data is aligned
 * for their dtype point into the file mapping (zero-copy); everything else is copied into graph memory. Also reads a
 * standalone TensorProto file. Touches only the graph it builds, the files it maps and the thread's error message. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats.h"
#include "pb.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "onnx.c points tensors at little-endian raw_data in place"
#endif

#define ONNX_MIN_OPSET 7
#define ONNX_MAX_OPSET 21
#define ONNX_MAX_EXTERNAL_FILES 8

/* Field numbers, from onnx.proto. */
enum { MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3, MODEL_GRAPH = 7,
       MODEL_OPSET_IMPORT = 8, MODEL_METADATA_PROPS = 14 };
enum { OPSET_DOMAIN = 1, OPSET_VERSION = 2 };
enum { ENTRY_KEY = 1, ENTRY_VALUE = 2 };
enum { GRAPH_NODE = 1, GRAPH_INITIALIZER = 5, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12, GRAPH_VALUE_INFO = 13,
       GRAPH_SPARSE_INITIALIZER = 15 };
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5, NODE_DOMAIN = 7 };
enum { ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_S = 4, ATTR_T = 5, ATTR_G = 6, ATTR_FLOATS = 7, ATTR_INTS = 8,
       ATTR_STRINGS = 9, ATTR_TENSORS = 10, ATTR_GRAPHS = 11, ATTR_TP = 14, ATTR_TYPE_PROTOS = 15, ATTR_TYPE = 20,
       ATTR_SPARSE_TENSOR = 22, ATTR_SPARSE_TENSORS = 23 };
/* AttributeProto.AttributeType values beyond op_attr_type's: lens drops these attributes. */
enum { ATTR_TYPE_TENSORS = 9, ATTR_TYPE_GRAPHS = 10, ATTR_TYPE_SPARSE_TENSOR = 11, ATTR_TYPE_SPARSE_TENSORS = 12,
       ATTR_TYPE_TYPE_PROTO = 13, ATTR_TYPE_TYPE_PROTOS = 14 };
enum { TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_SEGMENT = 3, TENSOR_FLOAT_DATA = 4, TENSOR_INT32_DATA = 5,
       TENSOR_STRING_DATA = 6, TENSOR_INT64_DATA = 7, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9, TENSOR_DOUBLE_DATA = 10,
       TENSOR_UINT64_DATA = 11, TENSOR_EXTERNAL_DATA = 13, TENSOR_DATA_LOCATION = 14 };
enum { VALUE_INFO_NAME = 1, VALUE_INFO_TYPE = 2 };
enum { TYPE_TENSOR_TYPE = 1, TYPE_DENOTATION = 6 };
enum { TENSOR_TYPE_ELEM_TYPE = 1, TENSOR_TYPE_SHAPE = 2 };
enum { SHAPE_DIM = 1 };
enum { DIM_VALUE = 1, DIM_PARAM = 2 };

typedef struct external_file {
    const char *location;
    const uint8_t *data; /* mapping kept by the graph */
    size_t size;
} external_file;

typedef struct onnx_loader {
    graph *g;
    core_arena *scratch; /* names and arrays needed only while building */
    const char *base_dir; /* NULL: external data refused */
    bool zero_copy;       /* the buffer being parsed is a mapping the graph keeps */
    external_file external[ONNX_MAX_EXTERNAL_FILES];
    int n_external;
    /* One anonymous mapping for all misaligned raw_data copies: fresh pages fault in once, in bulk, and are not
     * zeroed a second time as arena memory would be. */
    uint8_t *copies;
    size_t copies_used, copies_size;
    /* While parsing initializers: parse_tensor leaves misaligned raw_data of at least ONNX_DEFER_MIN bytes where it
     * is and sets deferred to it, instead of copying (graph_value.unaligned). */
    bool may_defer;
    const void *deferred;
} onnx_loader;

#define ONNX_COPY_REGION_MIN ((size_t)1 << 20) /* below this the arena is as good */
/* Misaligned initializers this large stay in the file until something reads them: the weights a node packs never
 * are copied. Copying every misaligned one cost ResNet-50 three quarters of its 100 MB in fresh pages (about 40 ms of
 * page faults on this VM, half the parse). Smaller ones (biases, shapes, scalars) are copied as they come. */
#define ONNX_DEFER_MIN ((size_t)16 << 10)

/* Whether raw_data of this many bytes at p is left in the mapping, aligned or deferred, rather than copied. */
static bool raw_stays_mapped(const onnx_loader *L, bool may_defer, const void *p, size_t bytes, size_t width) {
    return L->zero_copy && bytes && ((uintptr_t)p % width == 0 || (may_defer && bytes >= ONNX_DEFER_MIN));
}

static lens_status oom(void) { return core_fail(LENS_ERR_OUT_OF_MEMORY, "out of memory loading the model"); }

/* ---- Small readers ------------------------------------------------------------------------------------------- */

/* A name as a NUL-terminated string in arena memory. A NUL inside would make two names compare equal, so it is
 * refused. */
static lens_status read_name(const pb_field *f, core_arena *arena, const char **out, const char *what) {
    lens_status st = pb_expect(f, PB_WIRE_LEN);
    if (st) return st;
    if (f->len && memchr(f->data, 0, f->len))
        return core_fail(LENS_ERR_FORMAT, "%s at offset %zu contains a NUL byte", what, f->offset);
    char *s = core_arena_strndup(arena, (const char *)f->data, f->len);
    if (!s) return oom();
    *out = s;
    return LENS_OK;
}

/* Free text (doc, producer, metadata): kept as is, a NUL just ends it early. */
static lens_status read_text(const pb_field *f, core_arena *arena, const char **out) {
    lens_status st = pb_expect(f, PB_WIRE_LEN);
    if (st) return st;
    char *s = core_arena_strndup(arena, (const char *)f->data, f->len);
    if (!s) return oom();
    *out = s;
    return LENS_OK;
}

static lens_status read_varint_field(const pb_field *f, uint64_t *out) {
    lens_status st = pb_expect(f, PB_WIRE_VARINT);
    if (!st) *out = f->value;
    return st;
}

/* Adds the element count of one occurrence of a repeated scalar field to *total. */
static lens_status count_values(const pb_field *f, pb_scalar kind, size_t *total) {
    pb_values v;
    size_t n;
    lens_status st = pb_values_init(f, kind, &v);
    if (!st) st = pb_values_count(&v, &n);
    if (st) return st;
    if (!core_add_size(*total, n, total))
        return core_fail(LENS_ERR_FORMAT, "field %u at offset %zu: element count overflows", f->number, f->offset);
    return LENS_OK;
}

/* A StringStringEntryProto. */
static lens_status read_entry(const pb_reader *parent, const pb_field *f, core_arena *arena, const char **key,
                              const char **value) {
    pb_reader r;
    lens_status st = pb_enter(parent, f, &r);
    *key = *value = "";
    while (!st && pb_more(&r)) {
        pb_field x;
        if ((st = pb_next(&r, &x))) break;
        if (x.number == ENTRY_KEY) st = read_text(&x, arena, key);
        else if (x.number == ENTRY_VALUE) st = read_text(&x, arena, value);
    }
    return st;
}

static const char *onnx_type_name(uint64_t type) {
    static const char *const names[] = {"undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64",
                                        "string", "bool", "float16", "double", "uint32", "uint64", "complex64",
                                        "complex128", "bfloat16", "float8e4m3fn", "float8e4m3fnuz", "float8e5m2",
                                        "float8e5m2fnuz", "uint4", "int4", "float4e2m1"};
    return type < sizeof names / sizeof *names ? names[type] : "unknown";
}

/* Maps an ONNX element type to a lens dtype lens can hold; false for string, complex, 8- and 4-bit types. */
static bool onnx_dtype(uint64_t type, lens_dtype *out) {
    switch (type) {
    case LENS_DTYPE_FLOAT32: case LENS_DTYPE_UINT8: case LENS_DTYPE_INT8: case LENS_DTYPE_UINT16:
    case LENS_DTYPE_INT16: case LENS_DTYPE_INT32: case LENS_DTYPE_INT64: case LENS_DTYPE_BOOL:
    case LENS_DTYPE_FLOAT16: case LENS_DTYPE_FLOAT64: case LENS_DTYPE_UINT32: case LENS_DTYPE_UINT64:
    case LENS_DTYPE_BFLOAT16:
        *out = (lens_dtype)type;
        return true;
    default:
        return false;
    }
}

/* Memory for a copy of bytes of tensor data: from the copy region while it lasts, else the graph's arena. */
static void *copy_alloc(onnx_loader *L, size_t bytes) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded >= bytes && L->copies && L->copies_size - L->copies_used >= rounded) {
        void *p = L->copies + L->copies_used;
        L->copies_used += rounded;
        return p;
    }
    return graph_alloc(L->g, bytes ? bytes : 1);
}

/* ---- External data --------------------------------------------------------------------------------------------- */

/* External data must stay inside the model's directory: no absolute paths, no ".." components. */
static lens_status check_location(const char *location) {
    if (!*location) return core_fail(LENS_ERR_FORMAT, "external data has an empty location");
    if (location[0] == '/' || location[0] == '\\')
        return core_fail(LENS_ERR_FORMAT, "external data location '%s' is not a relative path", location);
    for (const char *p = location; *p;) {
        size_t n = strcspn(p, "/\\");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return core_fail(LENS_ERR_FORMAT, "external data location '%s' leaves the model's directory", location);
        p += n;
        if (*p) p++;
    }
    return LENS_OK;
}

static lens_status read_fully(int fd, void *buf, size_t bytes, uint64_t offset, const char *path) {
    uint8_t *dst = buf;
    while (bytes) {
        size_t chunk = bytes < ((size_t)1 << 30) ? bytes : ((size_t)1 << 30);
        ssize_t got = pread(fd, dst, chunk, (off_t)offset);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return core_fail(LENS_ERR_IO, "%s: %s", path, strerror(errno));
        if (got == 0) return core_fail(LENS_ERR_IO, "%s: file shrank while reading", path);
        dst += got;
        offset += (uint64_t)got;
        bytes -= (size_t)got;
    }
    return LENS_OK;
}

/* Points *out at bytes of external data (in a mapping the graph keeps, when aligned to align) or copies them into
 * graph memory. */
static lens_status load_external(onnx_loader *L, const char *location, uint64_t offset, bool has_length,
                                 uint64_t length, size_t bytes, size_t align, void **out) {
    if (!location) return core_fail(LENS_ERR_FORMAT, "external data has no location");
    lens_status st = check_location(location);
    if (st) return st;
    if (!L->base_dir)
        return core_fail(LENS_ERR_UNSUPPORTED, "external data '%s' needs a directory to look in", location);
    if (has_length && length != bytes)
        return core_fail(LENS_ERR_FORMAT, "external data '%s': length %llu does not match the tensor's %zu bytes",
                         location, (unsigned long long)length, bytes);

    const external_file *file = NULL;
    for (int i = 0; i < L->n_external; i++)
        if (!strcmp(L->external[i].location, location)) file = &L->external[i];
    if (file) {
        if (offset > file->size || bytes > file->size - offset)
            return core_fail(LENS_ERR_FORMAT, "external data '%s': %zu bytes at offset %llu run past its end (%zu bytes)",
                             location, bytes, (unsigned long long)offset, file->size);
        const uint8_t *p = file->data + offset;
        if ((uintptr_t)p % align == 0) {
            *out = (void *)p;
            return LENS_OK;
        }
        if (!(*out = graph_alloc(L->g, bytes ? bytes : 1))) return oom();
        memcpy(*out, p, bytes);
        return LENS_OK;
    }

    size_t path_len = strlen(L->base_dir) + strlen(location) + 2;
    char *path = core_arena_alloc(L->scratch, path_len);
    if (!path) return oom();
    snprintf(path, path_len, "%s/%s", L->base_dir, location);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return core_fail(LENS_ERR_IO, "external data %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return core_fail(LENS_ERR_IO, "external data %s: not a readable regular file", path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (offset > size || bytes > size - offset) {
        close(fd);
        return core_fail(LENS_ERR_FORMAT, "external data %s: %zu bytes at offset %llu run past its end (%llu bytes)",
                         path, bytes, (unsigned long long)offset, (unsigned long long)size);
    }
    /* Map the file once and point into it while the graph has room for another mapping; otherwise copy. */
    if (size > 0 && size <= SIZE_MAX && L->n_external < ONNX_MAX_EXTERNAL_FILES &&
        L->g->n_mappings < (int)(sizeof L->g->mappings / sizeof *L->g->mappings)) {
        void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            close(fd);
            if ((st = graph_keep_mapping(L->g, map, (size_t)size))) {
                munmap(map, (size_t)size);
                return st;
            }
            external_file *e = &L->external[L->n_external++];
            e->location = core_arena_strdup(L->scratch, location);
            if (!e->location) return oom();
            e->data = map;
            e->size = (size_t)size;
            return load_external(L, location, offset, has_length, length, bytes, align, out);
        }
    }
    if (!(*out = graph_alloc(L->g, bytes ? bytes : 1))) {
        close(fd);
        return oom();
    }
    st = read_fully(fd, *out, bytes, offset, path);
    close(fd);
    return st;
}

/* ---- TensorProto ----------------------------------------------------------------------------------------------- */

typedef struct tensor_proto {
    int rank;
    int64_t dims[TENSOR_MAX_RANK];
    uint64_t data_type;
    bool has_raw, external;
    pb_field raw;
    size_t n_float, n_int32, n_string, n_int64, n_double, n_uint64;
    const char *location;
    uint64_t offset, length;
    bool has_length;
} tensor_proto;

static lens_status parse_decimal(const char *s, const char *key, uint64_t *out) {
    uint64_t v = 0;
    if (!*s) return core_fail(LENS_ERR_FORMAT, "external data %s is empty", key);
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || __builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
            return core_fail(LENS_ERR_FORMAT, "external data %s '%s' is not a valid size", key, s);
    }
    *out = v;
    return LENS_OK;
}

/* The first pass over a TensorProto: shape, type, where the data is, and how many elements each typed field holds. */
static lens_status scan_tensor(onnx_loader *L, pb_reader *r, tensor_proto *tp, const char **name) {
    memset(tp, 0, sizeof *tp);
    lens_status st = LENS_OK;
    while (!st && pb_more(r)) {
        pb_field f;
        if ((st = pb_next(r, &f))) break;
        switch (f.number) {
        case TENSOR_DIMS: {
            pb_values v;
            size_t n = 0;
            uint64_t d;
            if ((st = pb_values_init(&f, PB_SCALAR_VARINT, &v)) || (st = pb_values_count(&v, &n))) break;
            if (n > (size_t)(TENSOR_MAX_RANK - tp->rank))
                return core_fail(LENS_ERR_UNSUPPORTED, "tensor has more than %d dimensions", TENSOR_MAX_RANK);
            while (pb_values_next(&v, &d)) {
                if ((int64_t)d < 0)
                    return core_fail(LENS_ERR_FORMAT, "dimension %d is negative (%lld)", tp->rank, (long long)(int64_t)d);
                tp->dims[tp->rank++] = (int64_t)d;
            }
            break;
        }
        case TENSOR_DATA_TYPE: st = read_varint_field(&f, &tp->data_type); break;
        case TENSOR_SEGMENT: return core_fail(LENS_ERR_UNSUPPORTED, "segmented tensors are not supported");
        case TENSOR_FLOAT_DATA: st = count_values(&f, PB_SCALAR_FIXED32, &tp->n_float); break;
        case TENSOR_INT32_DATA: st = count_values(&f, PB_SCALAR_VARINT, &tp->n_int32); break;
        case TENSOR_STRING_DATA:
            if (!(st = pb_expect(&f, PB_WIRE_LEN))) tp->n_string++;
            break;
        case TENSOR_INT64_DATA: st = count_values(&f, PB_SCALAR_VARINT, &tp->n_int64); break;
        case TENSOR_NAME: st = read_name(&f, L->scratch, name, "tensor name"); break;
        case TENSOR_RAW_DATA:
            if (!(st = pb_expect(&f, PB_WIRE_LEN))) {
                tp->raw = f;
                tp->has_raw = true;
            }
            break;
        case TENSOR_DOUBLE_DATA: st = count_values(&f, PB_SCALAR_FIXED64, &tp->n_double); break;
        case TENSOR_UINT64_DATA: st = count_values(&f, PB_SCALAR_VARINT, &tp->n_uint64); break;
        case TENSOR_EXTERNAL_DATA: {
            const char *key, *value;
            if ((st = read_entry(r, &f, L->scratch, &key, &value))) break;
            if (!strcmp(key, "location")) tp->location = value;
            else if (!strcmp(key, "offset")) st = parse_decimal(value, key, &tp->offset);
            else if (!strcmp(key, "length")) {
                st = parse_decimal(value, key, &tp->length);
                tp->has_length = true;
            }
            break;
        }
        case TENSOR_DATA_LOCATION: {
            uint64_t loc = 0;
            if ((st = read_varint_field(&f, &loc))) break;
            if (loc > 1) return core_fail(LENS_ERR_FORMAT, "data_location %llu is not DEFAULT or EXTERNAL",
                                          (unsigned long long)loc);
            tp->external = loc == 1;
            break;
        }
        default: break;
        }
    }
    return st;
}

/* The typed field that holds a dtype's values when raw_data is absent, as the ONNX spec assigns them. */
static int typed_field_for(lens_dtype dtype) {
    switch (dtype) {
    case LENS_DTYPE_FLOAT32: return TENSOR_FLOAT_DATA;
    case LENS_DTYPE_INT64: return TENSOR_INT64_DATA;
    case LENS_DTYPE_FLOAT64: return TENSOR_DOUBLE_DATA;
    case LENS_DTYPE_UINT32: case LENS_DTYPE_UINT64: return TENSOR_UINT64_DATA;
    default: return TENSOR_INT32_DATA; /* all narrower integers, bool, float16 and bfloat16 */
    }
}

static const char *field_name(int number) {
    switch (number) {
    case TENSOR_FLOAT_DATA: return "float_data";
    case TENSOR_INT32_DATA: return "int32_data";
    case TENSOR_STRING_DATA: return "string_data";
    case TENSOR_INT64_DATA: return "int64_data";
    case TENSOR_DOUBLE_DATA: return "double_data";
    case TENSOR_UINT64_DATA: return "uint64_data";
    }
    return "?";
}

/* Second pass: decodes the typed field into data (numel elements of dtype, zeroed graph memory). */
static lens_status fill_typed(pb_reader *r, int number, lens_dtype dtype, size_t numel, uint8_t *data) {
    size_t k = 0, width = dtype_size(dtype);
    lens_status st = LENS_OK;
    while (!st && pb_more(r)) {
        pb_field f;
        if ((st = pb_next(r, &f))) break;
        if ((int)f.number != number) continue;
        pb_values v;
        pb_scalar kind = number == TENSOR_FLOAT_DATA ? PB_SCALAR_FIXED32
                         : number == TENSOR_DOUBLE_DATA ? PB_SCALAR_FIXED64 : PB_SCALAR_VARINT;
        if ((st = pb_values_init(&f, kind, &v))) break;
        if (kind != PB_SCALAR_VARINT) {
            /* little-endian IEEE bits, same as memory: one copy */
            size_t n = (size_t)(v.end - v.pos) / width;
            if (n > numel - k) n = numel - k;
            memcpy(data + k * width, v.pos, n * width);
            k += n;
            continue;
        }
        uint64_t x;
        for (; k < numel && pb_values_next(&v, &x); k++) {
            switch (dtype) {
            case LENS_DTYPE_BOOL: data[k] = x != 0; break;
            case LENS_DTYPE_UINT8: case LENS_DTYPE_INT8: data[k] = (uint8_t)x; break;
            case LENS_DTYPE_UINT16: case LENS_DTYPE_INT16: case LENS_DTYPE_FLOAT16: case LENS_DTYPE_BFLOAT16:
                ((uint16_t *)data)[k] = (uint16_t)x;
                break;
            case LENS_DTYPE_INT32: case LENS_DTYPE_UINT32: ((uint32_t *)data)[k] = (uint32_t)x; break;
            default: ((uint64_t *)data)[k] = x; break;
            }
        }
    }
    return st;
}

/* Parses the TensorProto in field f into *out, its data in graph memory or the file mapping. *name receives the
 * tensor's name (scratch memory) as soon as it is read, for messages; "" when it has none. */
static lens_status parse_tensor(onnx_loader *L, const pb_reader *parent, const pb_field *f, tensor *out,
                                const char **name) {
    pb_reader r;
    tensor_proto tp;
    *name = "";
    memset(out, 0, sizeof *out);
    lens_status st = pb_enter(parent, f, &r);
    if (st || (st = scan_tensor(L, &r, &tp, name))) return st;

    lens_dtype dtype;
    if (tp.data_type == 0) return core_fail(LENS_ERR_FORMAT, "tensor has no data_type");
    if (!onnx_dtype(tp.data_type, &dtype))
        return core_fail(LENS_ERR_UNSUPPORTED, "tensor data type %llu (%s) is not supported",
                         (unsigned long long)tp.data_type, onnx_type_name(tp.data_type));
    out->dtype = dtype;
    out->rank = tp.rank;
    memcpy(out->dims, tp.dims, sizeof out->dims);
    int64_t numel = tensor_numel(out);
    size_t width = dtype_size(dtype), bytes;
    char shape[160];
    if (numel < 0 || !core_mul_size((size_t)numel, width, &bytes))
        return core_fail(LENS_ERR_FORMAT, "tensor of shape %s is too large", tensor_shape_string(out, shape, sizeof shape));

    size_t counts[16] = {0};
    counts[TENSOR_FLOAT_DATA] = tp.n_float;
    counts[TENSOR_INT32_DATA] = tp.n_int32;
    counts[TENSOR_STRING_DATA] = tp.n_string;
    counts[TENSOR_INT64_DATA] = tp.n_int64;
    counts[TENSOR_DOUBLE_DATA] = tp.n_double;
    counts[TENSOR_UINT64_DATA] = tp.n_uint64;
    int expected = typed_field_for(dtype);
    for (int i = 0; i < 16; i++) {
        if (!counts[i]) continue;
        if (tp.has_raw || tp.external)
            return core_fail(LENS_ERR_FORMAT, "tensor has both %s and %s", tp.external ? "external data" : "raw_data",
                             field_name(i));
        if (i != expected)
            return core_fail(LENS_ERR_FORMAT, "tensor of type %s holds its values in %s (expected %s)",
                             dtype_name(dtype), field_name(i), field_name(expected));
    }

    if (tp.external) {
        if (tp.has_raw) return core_fail(LENS_ERR_FORMAT, "tensor has both raw_data and external data");
        return load_external(L, tp.location, tp.offset, tp.has_length, tp.length, bytes, width, &out->data);
    }
    if (tp.has_raw) {
        if (tp.raw.len != bytes)
            return core_fail(LENS_ERR_FORMAT, "raw_data at offset %zu has %zu bytes; %s %s needs %zu", tp.raw.offset,
                             tp.raw.len, dtype_name(dtype), tensor_shape_string(out, shape, sizeof shape), bytes);
        if (raw_stays_mapped(L, L->may_defer, tp.raw.data, bytes, width)) {
            if ((uintptr_t)tp.raw.data % width == 0) out->data = (void *)tp.raw.data; /* read-only: never written */
            else L->deferred = tp.raw.data;
            return LENS_OK;
        }
        if (!(out->data = copy_alloc(L, bytes))) return oom();
        if (bytes) memcpy(out->data, tp.raw.data, bytes);
        /* the source pages of a copy are never read again: keep them out of the resident set */
        if (L->zero_copy) core_discard_pages((void *)tp.raw.data, bytes);
        return LENS_OK;
    }
    if (counts[expected] != (size_t)numel)
        return core_fail(LENS_ERR_FORMAT, "tensor %s %s has %zu values in %s; expected %lld", dtype_name(dtype),
                         tensor_shape_string(out, shape, sizeof shape), counts[expected], field_name(expected),
                         (long long)numel);
    if (!(out->data = graph_alloc(L->g, bytes ? bytes : 1))) return oom();
    if (!numel) return LENS_OK;
    pb_enter(parent, f, &r);
    return fill_typed(&r, expected, dtype, (size_t)numel, out->data);
}

/* ---- ValueInfoProto -------------------------------------------------------------------------------------------- */

typedef struct value_info {
    const char *name;
    bool has_type, is_tensor;
    uint64_t elem_type;
    int rank;        /* -1: no shape */
    int rank_seen;   /* may exceed TENSOR_MAX_RANK, then dims holds the first ones */
    int64_t dims[TENSOR_MAX_RANK];
} value_info;

static lens_status parse_shape(const pb_reader *parent, const pb_field *f, value_info *vi) {
    pb_reader r;
    lens_status st = pb_enter(parent, f, &r);
    vi->rank = 0;
    vi->rank_seen = 0;
    while (!st && pb_more(&r)) {
        pb_field x;
        if ((st = pb_next(&r, &x))) break;
        if (x.number != SHAPE_DIM) continue;
        pb_reader d;
        int64_t dim = -1; /* dim_param or nothing: dynamic */
        if ((st = pb_enter(&r, &x, &d))) break;
        while (!st && pb_more(&d)) {
            pb_field y;
            if ((st = pb_next(&d, &y))) break;
            if (y.number == DIM_VALUE) {
                uint64_t v;
                if (!(st = read_varint_field(&y, &v))) dim = (int64_t)v < 0 ? -1 : (int64_t)v;
            } else if (y.number == DIM_PARAM) {
                if (!(st = pb_expect(&y, PB_WIRE_LEN))) dim = -1;
            }
        }
        if (vi->rank_seen < TENSOR_MAX_RANK) vi->dims[vi->rank_seen] = dim;
        vi->rank_seen++;
    }
    vi->rank = vi->rank_seen;
    return st;
}

static lens_status parse_value_info(onnx_loader *L, const pb_reader *parent, const pb_field *f, value_info *vi) {
    pb_reader r;
    memset(vi, 0, sizeof *vi);
    vi->name = "";
    vi->rank = -1;
    lens_status st = pb_enter(parent, f, &r);
    while (!st && pb_more(&r)) {
        pb_field x;
        if ((st = pb_next(&r, &x))) break;
        if (x.number == VALUE_INFO_NAME) {
            st = read_name(&x, L->scratch, &vi->name, "value name");
        } else if (x.number == VALUE_INFO_TYPE) {
            pb_reader t;
            if ((st = pb_enter(&r, &x, &t))) break;
            while (!st && pb_more(&t)) {
                pb_field y;
                pb_reader tt;
                if ((st = pb_next(&t, &y))) break;
                if (y.number != TYPE_TENSOR_TYPE) {
                    if (y.number != TYPE_DENOTATION) vi->has_type = true, vi->is_tensor = false; /* sequence, map, ... */
                    continue;
                }
                vi->has_type = vi->is_tensor = true;
                if ((st = pb_enter(&t, &y, &tt))) break;
                while (!st && pb_more(&tt)) {
                    pb_field z;
                    if ((st = pb_next(&tt, &z))) break;
                    if (z.number == TENSOR_TYPE_ELEM_TYPE) st = read_varint_field(&z, &vi->elem_type);
                    else if (z.number == TENSOR_TYPE_SHAPE) st = parse_shape(&tt, &z, vi);
                }
            }
        }
    }
    return st;
}

/* ---- NodeProto / AttributeProto ------------------------------------------------------------------------------- */

/* Fills *a from an AttributeProto. *keep is false for kinds lens has no use for (tensor and graph lists, sparse
 * tensors, type protos) and for attributes that carry neither type nor value. */
static lens_status parse_attribute(onnx_loader *L, const pb_reader *parent, const pb_field *f, op_attr *a, bool *keep,
                                   const char **name) {
    graph *g = L->g;
    pb_reader r;
    pb_field s_field = {0}, t_field = {0};
    bool has_type = false, has_f = false, has_i = false, has_s = false, has_t = false, has_g = false;
    uint64_t type = 0;
    size_t n_floats = 0, n_ints = 0, n_strings = 0;
    memset(a, 0, sizeof *a);
    *keep = true;
    *name = "";
    lens_status st = pb_enter(parent, f, &r);
    while (!st && pb_more(&r)) {
        pb_field x;
        if ((st = pb_next(&r, &x))) break;
        switch (x.number) {
        case ATTR_NAME:
            if (!(st = read_name(&x, g->arena, name, "attribute name"))) a->name = *name;
            break;
        case ATTR_TYPE:
            st = read_varint_field(&x, &type);
            has_type = true;
            break;
        case ATTR_F:
            if (!(st = pb_expect(&x, PB_WIRE_I32))) a->f = pb_field_float(&x);
            has_f = true;
            break;
        case ATTR_I:
            if (!(st = pb_expect(&x, PB_WIRE_VARINT))) a->i = (int64_t)x.value;
            has_i = true;
            break;
        case ATTR_S:
            st = pb_expect(&x, PB_WIRE_LEN);
            s_field = x;
            has_s = true;
            break;
        case ATTR_T:
            st = pb_expect(&x, PB_WIRE_LEN);
            t_field = x;
            has_t = true;
            break;
        case ATTR_G:
            st = pb_expect(&x, PB_WIRE_LEN);
            has_g = true;
            break;
        case ATTR_FLOATS: st = count_values(&x, PB_SCALAR_FIXED32, &n_floats); break;
        case ATTR_INTS: st = count_values(&x, PB_SCALAR_VARINT, &n_ints); break;
        case ATTR_STRINGS:
            st = pb_expect(&x, PB_WIRE_LEN);
            n_strings++;
            break;
        default: break;
        }
    }
    if (st) return st;
    if (!a->name || !*a->name) return core_fail(LENS_ERR_FORMAT, "attribute has no name");
    /* Old exporters leave out type: the field that is set tells it. */
    if (!has_type || type == OP_ATTR_UNDEFINED) {
        type = has_f ? OP_ATTR_FLOAT : has_i ? OP_ATTR_INT : has_s ? OP_ATTR_STRING : has_t ? OP_ATTR_TENSOR
             : has_g ? OP_ATTR_GRAPH : n_floats ? OP_ATTR_FLOATS : n_ints ? OP_ATTR_INTS
             : n_strings ? OP_ATTR_STRINGS : OP_ATTR_UNDEFINED;
        if (type == OP_ATTR_UNDEFINED) { /* tensor or graph lists, or nothing at all */
            *keep = false;
            return LENS_OK;
        }
    }
    switch (type) {
    case OP_ATTR_FLOAT: case OP_ATTR_INT: case OP_ATTR_GRAPH:
        break;
    case OP_ATTR_STRING:
        a->s = has_s ? graph_strndup(g, (const char *)s_field.data, s_field.len) : "";
        a->s_len = has_s ? s_field.len : 0;
        if (!a->s) return oom();
        break;
    case OP_ATTR_TENSOR: {
        if (!has_t) return core_fail(LENS_ERR_FORMAT, "attribute of type TENSOR has no tensor");
        tensor *t = graph_alloc(g, sizeof *t);
        const char *tensor_name;
        if (!t) return oom();
        if ((st = parse_tensor(L, &r, &t_field, t, &tensor_name))) return st;
        a->t = t;
        break;
    }
    case OP_ATTR_FLOATS: case OP_ATTR_INTS: case OP_ATTR_STRINGS: {
        size_t n = type == OP_ATTR_FLOATS ? n_floats : type == OP_ATTR_INTS ? n_ints : n_strings;
        size_t width = type == OP_ATTR_FLOATS ? sizeof(float) : type == OP_ATTR_INTS ? sizeof(int64_t)
                                                                                       : sizeof(const char *);
        int number = type == OP_ATTR_FLOATS ? ATTR_FLOATS : type == OP_ATTR_INTS ? ATTR_INTS : ATTR_STRINGS;
        void *array = NULL;
        a->count = n;
        if (n && !(array = graph_alloc(g, n * width))) return oom(); /* n * width <= bytes in the file */
        size_t k = 0;
        pb_enter(parent, f, &r);
        while (n && !st && pb_more(&r)) {
            pb_field x;
            pb_values v;
            uint64_t bits;
            if ((st = pb_next(&r, &x))) break;
            if ((int)x.number != number) continue;
            if (type == OP_ATTR_STRINGS) {
                if (k < n && !(((const char **)array)[k++] = graph_strndup(g, (const char *)x.data, x.len)))
                    return oom();
                continue;
            }
            if ((st = pb_values_init(&x, type == OP_ATTR_FLOATS ? PB_SCALAR_FIXED32 : PB_SCALAR_VARINT, &v))) break;
            for (; k < n && pb_values_next(&v, &bits); k++) {
                if (type == OP_ATTR_FLOATS) {
                    uint32_t b32 = (uint32_t)bits;
                    memcpy((float *)array + k, &b32, sizeof(float));
                } else {
                    ((int64_t *)array)[k] = (int64_t)bits;
                }
            }
        }
        if (type == OP_ATTR_FLOATS) a->floats = array;
        else if (type == OP_ATTR_INTS) a->ints = array;
        else a->strings = array;
        break;
    }
    case ATTR_TYPE_TENSORS: case ATTR_TYPE_GRAPHS: case ATTR_TYPE_SPARSE_TENSOR: case ATTR_TYPE_SPARSE_TENSORS:
    case ATTR_TYPE_TYPE_PROTO: case ATTR_TYPE_TYPE_PROTOS:
        *keep = false;
        return LENS_OK;
    default:
        return core_fail(LENS_ERR_FORMAT, "attribute has unknown type %llu", (unsigned long long)type);
    }
    a->type = (op_attr_type)type;
    return st;
}

static lens_status node_fail(lens_status st, size_t index, const char *name, const char *op_type) {
    if (*name) return core_fail_context(st, "node '%s'", name);
    if (*op_type) return core_fail_context(st, "node #%zu (%s)", index, op_type);
    return core_fail_context(st, "node #%zu", index);
}

static lens_status parse_node(onnx_loader *L, const pb_reader *parent, const pb_field *f, size_t index) {
    pb_reader r;
    size_t n_in = 0, n_out = 0, n_attrs = 0;
    const char *name = "", *op_type = "", *domain = "";
    lens_status st = pb_enter(parent, f, &r);
    while (!st && pb_more(&r)) {
        pb_field x;
        if ((st = pb_next(&r, &x))) break;
        switch (x.number) {
        case NODE_INPUT: if (!(st = pb_expect(&x, PB_WIRE_LEN))) n_in++; break;
        case NODE_OUTPUT: if (!(st = pb_expect(&x, PB_WIRE_LEN))) n_out++; break;
        case NODE_ATTRIBUTE: if (!(st = pb_expect(&x, PB_WIRE_LEN))) n_attrs++; break;
        case NODE_NAME: st = read_name(&x, L->scratch, &name, "node name"); break;
        case NODE_OP_TYPE: st = read_name(&x, L->scratch, &op_type, "op_type"); break;
        case NODE_DOMAIN: st = read_name(&x, L->scratch, &domain, "domain"); break;
        default: break;
        }
    }
    if (st) return node_fail(st, index, name, op_type);
    if (!*op_type) return node_fail(core_fail(LENS_ERR_FORMAT, "no op_type"), index, name, op_type);
    if (n_in > INT_MAX / 2 || n_out > INT_MAX / 2 || n_attrs > INT_MAX / 2)
        return node_fail(core_fail(LENS_ERR_UNSUPPORTED, "too many inputs, outputs or attributes"), index, name,
                         op_type);

    const char **inputs = core_arena_alloc(L->scratch, (n_in + 1) * sizeof *inputs);
    const char **outputs = core_arena_alloc(L->scratch, (n_out + 1) * sizeof *outputs);
    op_attr *attrs = core_arena_alloc(L->scratch, (n_attrs + 1) * sizeof *attrs);
    if (!inputs || !outputs || !attrs) return oom();
    size_t i_in = 0, i_out = 0, i_attr = 0;
    pb_enter(parent, f, &r);
    while (!st && pb_more(&r)) {
        pb_field x;
        if ((st = pb_next(&r, &x))) break;
        if (x.number == NODE_INPUT && i_in < n_in) {
            st = read_name(&x, L->scratch, &inputs[i_in++], "input name");
        } else if (x.number == NODE_OUTPUT && i_out < n_out) {
            st = read_name(&x, L->scratch, &outputs[i_out++], "output name");
        } else if (x.number == NODE_ATTRIBUTE && i_attr < n_attrs) {
            bool keep;
            const char *attr_name;
            if ((st = parse_attribute(L, &r, &x, &attrs[i_attr], &keep, &attr_name))) {
                if (*attr_name) core_fail_context(st, "attribute '%s'", attr_name);
                else core_fail_context(st, "attribute #%zu", i_attr);
                return node_fail(st, index, name, op_type);
            }
            if (keep) i_attr++;
            else n_attrs--;
        }
    }
    if (!st) st = graph_add_node(L->g, name, domain, op_type, (int)i_in, inputs, (int)i_out, outputs, (int)i_attr, attrs,
                                 NULL);
    return st ? node_fail(st, index, name, op_type) : LENS_OK;
}

/* ---- GraphProto ------------------------------------------------------------------------------------------------ */

static lens_status declared_type(const value_info *vi, const char *what, bool strict, lens_dtype *dtype) {
    *dtype = LENS_DTYPE_UNDEFINED;
    if (vi->has_type && !vi->is_tensor) {
        if (strict) return core_fail(LENS_ERR_UNSUPPORTED, "%s '%s' is not a tensor", what, vi->name);
        return LENS_OK;
    }
    if (vi->elem_type && !onnx_dtype(vi->elem_type, dtype) && strict)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s '%s' has element type %llu (%s), which is not supported", what,
                         vi->name, (unsigned long long)vi->elem_type, onnx_type_name(vi->elem_type));
    if (vi->rank > TENSOR_MAX_RANK)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s '%s' has rank %d; at most %d is supported", what, vi->name,
                         vi->rank, TENSOR_MAX_RANK);
    return LENS_OK;
}

/* Sizes the copy region from the initializers whose raw_data will be copied (all of them when the buffer is the
 * caller's, the misaligned ones when it is a mapping the graph keeps). Errors are left for the real pass to
 * report; failing to map just means the arena is used. */
static void reserve_copies(onnx_loader *L, pb_reader *r) {
    size_t total = 0;
    while (pb_more(r)) {
        pb_field f;
        pb_reader t;
        tensor_proto tp;
        const char *name;
        lens_dtype dtype;
        if (pb_next(r, &f)) return;
        if (f.number != GRAPH_INITIALIZER) continue;
        if (pb_enter(r, &f, &t) || scan_tensor(L, &t, &tp, &name)) return;
        if (!tp.has_raw || tp.external || !onnx_dtype(tp.data_type, &dtype)) continue;
        if (raw_stays_mapped(L, true, tp.raw.data, tp.raw.len, dtype_size(dtype))) continue; /* as initializers */
        size_t rounded = (tp.raw.len + 63) & ~(size_t)63;
        if (rounded < tp.raw.len || !core_add_size(total, rounded, &total)) return;
    }
    if (total < ONNX_COPY_REGION_MIN || L->g->n_mappings >= (int)(sizeof L->g->mappings / sizeof *L->g->mappings))
        return;
    void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (map == MAP_FAILED) return;
    if (graph_keep_mapping(L->g, map, total)) {
        munmap(map, total);
        return;
    }
    L->copies = map;
    L->copies_size = total;
}

static lens_status parse_graph(onnx_loader *L, const pb_reader *parent, const pb_field *graph_field) {
    graph *g = L->g;
    pb_reader r;
    lens_status st;
    size_t index[16] = {0};

    if ((st = pb_enter(parent, graph_field, &r))) return st;
    reserve_copies(L, &r);

    /* Initializers first, so that declared inputs that are initializers can be recognised. */
    pb_enter(parent, graph_field, &r);
    while (pb_more(&r)) {
        pb_field f;
        if ((st = pb_next(&r, &f))) return st;
        if (f.number == GRAPH_SPARSE_INITIALIZER)
            return core_fail(LENS_ERR_UNSUPPORTED, "sparse initializers are not supported");
        if (f.number != GRAPH_INITIALIZER) continue;
        tensor t;
        const char *name;
        size_t i = index[GRAPH_INITIALIZER]++;
        L->may_defer = true;
        L->deferred = NULL;
        st = parse_tensor(L, &r, &f, &t, &name);
        L->may_defer = false;
        if (st) {
            if (*name) return core_fail_context(st, "initializer '%s'", name);
            return core_fail_context(st, "initializer #%zu", i);
        }
        if (!*name) return core_fail(LENS_ERR_FORMAT, "initializer #%zu has no name", i);
        if ((st = L->deferred ? graph_set_unaligned_constant(g, name, &t, L->deferred) : graph_set_constant(g, name, &t)))
            return st;
    }
    if (L->copies) {
        /* constants are never written: make a stray write fault here as it would in the file mapping */
        mprotect(L->copies, L->copies_size, PROT_READ);
        L->copies = NULL;
    }

    pb_enter(parent, graph_field, &r);
    while (pb_more(&r)) {
        pb_field f;
        if ((st = pb_next(&r, &f))) return st;
        if (f.number != GRAPH_NODE) continue;
        if ((st = parse_node(L, &r, &f, index[GRAPH_NODE]++))) return st;
    }

    pb_enter(parent, graph_field, &r);
    while (pb_more(&r)) {
        pb_field f;
        value_info vi;
        lens_dtype dtype;
        if ((st = pb_next(&r, &f))) return st;
        if (f.number != GRAPH_INPUT && f.number != GRAPH_OUTPUT) continue;
        const char *what = f.number == GRAPH_INPUT ? "input" : "output";
        size_t i = index[f.number]++;
        if ((st = parse_value_info(L, &r, &f, &vi))) return core_fail_context(st, "graph %s #%zu", what, i);
        if (!*vi.name) return core_fail(LENS_ERR_FORMAT, "graph %s #%zu has no name", what, i);
        if (f.number == GRAPH_INPUT) {
            int v = graph_value_find(g, vi.name);
            if (v >= 0 && g->values[v].constant) continue; /* a default for an initializer, not an input */
        }
        if ((st = declared_type(&vi, what, f.number == GRAPH_INPUT, &dtype))) return st;
        st = f.number == GRAPH_INPUT ? graph_add_input(g, vi.name, dtype, vi.rank, vi.dims)
                                     : graph_add_output(g, vi.name, dtype, vi.rank, vi.dims);
        if (st) return st;
    }
    if (!g->n_outputs) return core_fail(LENS_ERR_FORMAT, "graph has no outputs");

    /* value_info only fills in values nothing else declared. */
    pb_enter(parent, graph_field, &r);
    while (pb_more(&r)) {
        pb_field f;
        value_info vi;
        lens_dtype dtype;
        if ((st = pb_next(&r, &f))) return st;
        if (f.number != GRAPH_VALUE_INFO) continue;
        size_t i = index[GRAPH_VALUE_INFO]++;
        if ((st = parse_value_info(L, &r, &f, &vi))) return core_fail_context(st, "value_info #%zu", i);
        int v = graph_value_find(g, vi.name);
        if (v < 0) continue;
        graph_value *val = &g->values[v];
        if (val->constant || val->rank >= 0 || val->dtype) continue;
        if (declared_type(&vi, "value", false, &dtype)) continue; /* rank too high: leave it unknown */
        val->dtype = dtype;
        val->rank = vi.rank;
        for (int d = 0; d < vi.rank; d++) val->dims[d] = vi.dims[d];
    }
    return LENS_OK;
}

/* ---- ModelProto ------------------------------------------------------------------------------------------------ */

static lens_status parse_opset(onnx_loader *L, const pb_reader *parent, const pb_field *f) {
    pb_reader r;
    const char *domain = "";
    uint64_t version = 0;
    lens_status st = pb_enter(parent, f, &r);
    while (!st && pb_more(&r)) {
        pb_field x;
        if ((st = pb_next(&r, &x))) break;
        if (x.number == OPSET_DOMAIN) st = read_name(&x, L->scratch, &domain, "opset domain");
        else if (x.number == OPSET_VERSION) st = read_varint_field(&x, &version);
    }
    if (st) return st;
    bool is_default = !*domain || !strcmp(domain, "ai.onnx");
    if (is_default && (version < ONNX_MIN_OPSET || version > ONNX_MAX_OPSET))
        return core_fail(LENS_ERR_UNSUPPORTED, "opset %lld of the default domain is not supported (lens supports %d to %d)",
                         (long long)version, ONNX_MIN_OPSET, ONNX_MAX_OPSET);
    if (version > INT_MAX)
        return core_fail(LENS_ERR_FORMAT, "opset version %llu of domain '%s' is out of range",
                         (unsigned long long)version, domain);
    return graph_set_opset(L->g, domain, (int)version);
}

static lens_status parse_model(onnx_loader *L, const uint8_t *data, size_t size) {
    graph *g = L->g;
    pb_reader r;
    pb_field graph_field = {0};
    int n_graphs = 0, n_opsets = 0;
    const char *producer_name = "", *producer_version = "";
    lens_status st = LENS_OK;
    pb_reader_init(&r, data, size);
    while (!st && pb_more(&r)) {
        pb_field f;
        uint64_t ignored;
        if ((st = pb_next(&r, &f))) break;
        switch (f.number) {
        case MODEL_IR_VERSION: st = read_varint_field(&f, &ignored); break;
        case MODEL_PRODUCER_NAME: st = read_text(&f, L->scratch, &producer_name); break;
        case MODEL_PRODUCER_VERSION: st = read_text(&f, L->scratch, &producer_version); break;
        case MODEL_GRAPH:
            if (!(st = pb_expect(&f, PB_WIRE_LEN))) graph_field = f;
            n_graphs++;
            break;
        case MODEL_OPSET_IMPORT:
            st = parse_opset(L, &r, &f);
            n_opsets++;
            break;
        case MODEL_METADATA_PROPS: {
            const char *key, *value;
            if (!(st = read_entry(&r, &f, L->scratch, &key, &value))) st = graph_set_metadata(g, key, value);
            break;
        }
        default: break;
        }
    }
    if (st) return st;
    if (!n_graphs) return core_fail(LENS_ERR_FORMAT, "not an ONNX model: no graph");
    if (n_graphs > 1) return core_fail(LENS_ERR_FORMAT, "model has %d graphs", n_graphs);
    if (!n_opsets) return core_fail(LENS_ERR_FORMAT, "model has no opset_import");

    size_t n1 = strlen(producer_name), n2 = strlen(producer_version);
    char *producer = graph_alloc(g, n1 + n2 + 2);
    if (!producer) return oom();
    snprintf(producer, n1 + n2 + 2, "%s%s%s", producer_name, n1 && n2 ? " " : "", producer_version);
    g->producer = producer;
    return parse_graph(L, &r, &graph_field);
}

/* ---- Entry points ---------------------------------------------------------------------------------------------- */

static lens_status load(const uint8_t *data, size_t size, const char *source, const char *base_dir, void *mapping,
                        graph **out) {
    graph *g;
    onnx_loader L = {0};
    lens_status st = graph_create("onnx", source, &g);
    if (st) {
        if (mapping) munmap(mapping, size);
        return core_fail_context(st, "%s", source);
    }
    if (mapping && (st = graph_keep_mapping(g, mapping, size))) {
        munmap(mapping, size);
        graph_free(g);
        return core_fail_context(st, "%s", source);
    }
    L.g = g;
    L.base_dir = base_dir;
    L.zero_copy = mapping != NULL;
    if (!(L.scratch = core_arena_create())) st = oom();
    if (!st) st = parse_model(&L, data, size);
    core_arena_free(L.scratch);
    /* Parsing touched the protobuf framing and the sources of the copies. Dropping the mapping's pages keeps them
     * out of the resident set; constants that point into it fault back in from the page cache when read. */
    if (!st && mapping) core_discard_pages(mapping, size);
    if (st) {
        graph_free(g);
        return core_fail_context(st, "%s", source);
    }
    *out = g;
    return LENS_OK;
}

/* Maps a whole file read-only. size 0 is reported as an empty file (mmap refuses it anyway). */
static lens_status map_file(const char *path, void **addr, size_t *size) {
    *addr = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return core_fail(LENS_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb)) {
        int e = errno;
        close(fd);
        return core_fail(LENS_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return core_fail(LENS_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return core_fail(LENS_ERR_FORMAT, "%s: empty file", path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return core_fail(LENS_ERR_LIMIT, "%s: file too large to map", path);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return core_fail(LENS_ERR_IO, "%s: cannot map: %s", path, strerror(e));
    *addr = map;
    *size = (size_t)sb.st_size;
    return LENS_OK;
}

/* The directory part of path ("." when there is none), malloc'd. */
static char *directory_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (dir) {
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    return dir;
}

lens_status onnx_load_file(const char *path, graph **out) {
    if (!out) return core_fail(LENS_ERR_INVALID_ARGUMENT, "onnx_load_file: out is NULL");
    *out = NULL;
    if (!path) return core_fail(LENS_ERR_INVALID_ARGUMENT, "onnx_load_file: path is NULL");
    void *map;
    size_t size;
    lens_status st = map_file(path, &map, &size);
    if (st) return st;
    char *dir = directory_of(path);
    if (!dir) {
        munmap(map, size);
        return core_fail(LENS_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    st = load(map, size, path, dir, map, out);
    free(dir);
    return st;
}

lens_status onnx_load_memory(const void *data, size_t size, const char *source_name, const char *base_dir,
                             graph **out) {
    if (!out) return core_fail(LENS_ERR_INVALID_ARGUMENT, "onnx_load_memory: out is NULL");
    *out = NULL;
    const char *source = source_name ? source_name : "<memory>";
    if (!data && size) return core_fail(LENS_ERR_INVALID_ARGUMENT, "%s: data is NULL", source);
    if (!size) return core_fail(LENS_ERR_FORMAT, "%s: empty file", source);
    return load(data, size, source, base_dir, NULL, out);
}

lens_status onnx_read_tensor_file(const char *path, graph *g, tensor *out) {
    if (!path || !g || !out) return core_fail(LENS_ERR_INVALID_ARGUMENT, "onnx_read_tensor_file: NULL argument");
    memset(out, 0, sizeof *out);
    void *map;
    size_t size;
    lens_status st = map_file(path, &map, &size);
    if (st) return st;
    char *dir = directory_of(path);
    onnx_loader L = {.g = g, .base_dir = dir, .zero_copy = false, .scratch = core_arena_create()};
    if (!dir || !L.scratch) {
        st = oom();
    } else {
        pb_reader top;
        pb_field whole = {.number = 0, .wire = PB_WIRE_LEN, .offset = 0, .value = size, .data = map, .len = size};
        const char *name;
        pb_reader_init(&top, map, size);
        st = parse_tensor(&L, &top, &whole, out, &name);
    }
    core_arena_free(L.scratch);
    free(dir);
    munmap(map, size);
    if (st) {
        memset(out, 0, sizeof *out);
        return core_fail_context(st, "%s", path);
    }
    return LENS_OK;
}
