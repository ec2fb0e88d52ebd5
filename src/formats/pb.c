/* pb.c — protobuf wire-format reader: tags, varints, fixed-width and length-delimited payloads, packed repeated
 * scalars. Reads only the caller's buffer and writes only the caller's structs and the thread's error message. */
#include <string.h>

#include "pb.h"

#define PB_MAX_FIELD_NUMBER 536870911u /* 2^29 - 1 */

enum { VARINT_OK, VARINT_TRUNCATED, VARINT_OVERLONG };

static int decode_varint(const uint8_t **pos, const uint8_t *end, uint64_t *out) {
    const uint8_t *p = *pos;
    uint64_t value = 0;
    for (int i = 0; i < PB_MAX_VARINT_BYTES; i++) {
        if (p >= end) return VARINT_TRUNCATED;
        uint8_t byte = *p++;
        /* the tenth byte holds only bit 63: anything more would not fit */
        if (i == PB_MAX_VARINT_BYTES - 1 && byte > 1) return VARINT_OVERLONG;
        value |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            *out = value;
            *pos = p;
            return VARINT_OK;
        }
    }
    return VARINT_OVERLONG;
}

bool pb_read_varint(const uint8_t **pos, const uint8_t *end, uint64_t *out) {
    return decode_varint(pos, end, out) == VARINT_OK;
}

static uint64_t load_le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

void pb_reader_init(pb_reader *r, const void *data, size_t size) {
    r->base = data;
    r->pos = data;
    r->end = r->pos + size;
    r->depth = 0;
}

static const char *wire_name(pb_wire wire) {
    switch (wire) {
    case PB_WIRE_VARINT: return "varint";
    case PB_WIRE_I64: return "fixed64";
    case PB_WIRE_LEN: return "length-delimited";
    case PB_WIRE_SGROUP: return "start-group";
    case PB_WIRE_EGROUP: return "end-group";
    case PB_WIRE_I32: return "fixed32";
    }
    return "invalid";
}

static lens_status varint_error(int code, const char *what, uint32_t number, size_t offset) {
    if (code == VARINT_TRUNCATED)
        return core_fail(LENS_ERR_FORMAT, "truncated: %s of field %u at offset %zu runs past the end", what, number,
                         offset);
    return core_fail(LENS_ERR_FORMAT, "malformed varint: %s of field %u at offset %zu is longer than %d bytes", what,
                     number, offset, PB_MAX_VARINT_BYTES);
}

lens_status pb_next(pb_reader *r, pb_field *f) {
    const uint8_t *p = r->pos;
    size_t offset = pb_offset(r);
    uint64_t tag;
    int code = decode_varint(&p, r->end, &tag);
    if (code == VARINT_TRUNCATED)
        return core_fail(LENS_ERR_FORMAT, "truncated: field tag at offset %zu runs past the end", offset);
    if (code == VARINT_OVERLONG)
        return core_fail(LENS_ERR_FORMAT, "malformed varint: field tag at offset %zu is longer than %d bytes", offset,
                         PB_MAX_VARINT_BYTES);
    uint64_t number = tag >> 3;
    if (number == 0 || number > PB_MAX_FIELD_NUMBER)
        return core_fail(LENS_ERR_FORMAT, "invalid field number %llu at offset %zu", (unsigned long long)number,
                         offset);
    f->number = (uint32_t)number;
    f->wire = (pb_wire)(tag & 7);
    f->offset = offset;
    f->data = p;
    size_t remain = (size_t)(r->end - p);
    switch (f->wire) {
    case PB_WIRE_VARINT:
        if ((code = decode_varint(&p, r->end, &f->value)) != VARINT_OK)
            return varint_error(code, "value", f->number, offset);
        f->len = (size_t)(p - f->data);
        break;
    case PB_WIRE_I64:
    case PB_WIRE_I32: {
        size_t width = f->wire == PB_WIRE_I64 ? 8 : 4;
        if (remain < width)
            return core_fail(LENS_ERR_FORMAT, "truncated: field %u at offset %zu needs %zu bytes, %zu remain",
                             f->number, offset, width, remain);
        f->value = load_le(p, (int)width);
        f->len = width;
        p += width;
        break;
    }
    case PB_WIRE_LEN: {
        uint64_t len;
        if ((code = decode_varint(&p, r->end, &len)) != VARINT_OK) return varint_error(code, "length", f->number, offset);
        f->data = p;
        remain = (size_t)(r->end - p);
        if (len > remain)
            return core_fail(LENS_ERR_FORMAT, "truncated: field %u at offset %zu needs %llu bytes, %zu remain",
                             f->number, offset, (unsigned long long)len, remain);
        f->value = len;
        f->len = (size_t)len;
        p += f->len;
        break;
    }
    case PB_WIRE_SGROUP:
    case PB_WIRE_EGROUP:
        return core_fail(LENS_ERR_FORMAT, "field %u at offset %zu: groups are not supported", f->number, offset);
    default:
        return core_fail(LENS_ERR_FORMAT, "field %u at offset %zu: invalid wire type %u", f->number, offset,
                         (unsigned)f->wire);
    }
    r->pos = p;
    return LENS_OK;
}

lens_status pb_expect(const pb_field *f, pb_wire wire) {
    if (f->wire == wire) return LENS_OK;
    return core_fail(LENS_ERR_FORMAT, "field %u at offset %zu: expected %s, found %s", f->number, f->offset,
                     wire_name(wire), wire_name(f->wire));
}

lens_status pb_enter(const pb_reader *r, const pb_field *f, pb_reader *sub) {
    lens_status st = pb_expect(f, PB_WIRE_LEN);
    if (st) return st;
    if (r->depth >= PB_MAX_DEPTH)
        return core_fail(LENS_ERR_FORMAT, "field %u at offset %zu: messages nested deeper than %d", f->number,
                         f->offset, PB_MAX_DEPTH);
    sub->base = r->base;
    sub->pos = f->data;
    sub->end = f->data + f->len;
    sub->depth = r->depth + 1;
    return LENS_OK;
}

float pb_field_float(const pb_field *f) {
    uint32_t bits = (uint32_t)f->value;
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

double pb_field_double(const pb_field *f) {
    double v;
    memcpy(&v, &f->value, sizeof v);
    return v;
}

/* ---- Repeated scalars ------------------------------------------------------------------------------------------ */

static size_t scalar_width(pb_scalar kind) { return kind == PB_SCALAR_FIXED32 ? 4 : kind == PB_SCALAR_FIXED64 ? 8 : 0; }

lens_status pb_values_init(const pb_field *f, pb_scalar kind, pb_values *v) {
    v->kind = kind;
    v->offset = f->offset;
    v->pos = f->data;
    v->end = f->data + f->len;
    size_t width = scalar_width(kind);
    if (f->wire == PB_WIRE_LEN) {
        if (width && f->len % width)
            return core_fail(LENS_ERR_FORMAT, "field %u at offset %zu: packed length %zu is not a multiple of %zu",
                             f->number, f->offset, f->len, width);
        return LENS_OK;
    }
    pb_wire wire = kind == PB_SCALAR_VARINT ? PB_WIRE_VARINT : kind == PB_SCALAR_FIXED32 ? PB_WIRE_I32 : PB_WIRE_I64;
    return pb_expect(f, wire);
}

lens_status pb_values_count(const pb_values *v, size_t *count) {
    size_t width = scalar_width(v->kind);
    if (width) {
        *count = (size_t)(v->end - v->pos) / width;
        return LENS_OK;
    }
    size_t n = 0;
    uint64_t ignored;
    for (const uint8_t *p = v->pos; p < v->end; n++) {
        const uint8_t *start = p;
        int code = decode_varint(&p, v->end, &ignored);
        if (code != VARINT_OK)
            return core_fail(LENS_ERR_FORMAT, "field at offset %zu: packed varint %zu (byte %zu of the payload) is %s",
                             v->offset, n, (size_t)(start - v->pos),
                             code == VARINT_TRUNCATED ? "truncated" : "longer than 10 bytes");
    }
    *count = n;
    return LENS_OK;
}

bool pb_values_next(pb_values *v, uint64_t *out) {
    size_t width = scalar_width(v->kind);
    if (!width) return v->pos < v->end && decode_varint(&v->pos, v->end, out) == VARINT_OK;
    if ((size_t)(v->end - v->pos) < width) return false;
    *out = load_le(v->pos, (int)width);
    v->pos += width;
    return true;
}
