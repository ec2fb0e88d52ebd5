/* pb.h — a protobuf wire-format reader over a buffer in memory: fields one at a time (tag, then the payload located
 * and bounds-checked), sub-messages with a depth limit, repeated scalars packed or not. Nothing is copied and nothing
 * is allocated; every length is checked against the bytes that remain. Includes only core. */
#ifndef LENS_PB_H
#define LENS_PB_H

#include "../core/core.h"

#define PB_MAX_DEPTH 64        /* sub-messages deeper than this are refused */
#define PB_MAX_VARINT_BYTES 10 /* a 64-bit value never needs more */

typedef enum pb_wire {
    PB_WIRE_VARINT = 0,
    PB_WIRE_I64 = 1,
    PB_WIRE_LEN = 2,
    PB_WIRE_SGROUP = 3, /* groups are refused */
    PB_WIRE_EGROUP = 4,
    PB_WIRE_I32 = 5
} pb_wire;

/* A cursor over one message. base is the start of the outermost buffer, so that offsets in messages point into the
 * file. */
typedef struct pb_reader {
    const uint8_t *base;
    const uint8_t *pos, *end;
    int depth;
} pb_reader;

/* One field as pb_next found it. data/len always locate the payload: the varint's bytes, the 4 or 8 fixed bytes, or
 * the length-delimited content (borrowed from the reader's buffer). */
typedef struct pb_field {
    uint32_t number;
    pb_wire wire;
    size_t offset;       /* of the tag, from base */
    uint64_t value;      /* VARINT: the value; I32 / I64: the little-endian bits; LEN: the length */
    const uint8_t *data;
    size_t len;
} pb_field;

/* Starts reading a top-level message of size bytes at data. */
void pb_reader_init(pb_reader *r, const void *data, size_t size);
/* True while fields remain. */
static inline bool pb_more(const pb_reader *r) { return r->pos < r->end; }
/* Offset of the cursor from base. */
static inline size_t pb_offset(const pb_reader *r) { return (size_t)(r->pos - r->base); }

/* Reads the next field (tag and payload) and advances past it. Unknown fields are read the same way: a caller skips
 * one by ignoring it. LENS_ERR_FORMAT with a message ("truncated: field 7 at offset 1234 needs 5000 bytes, 12
 * remain") for a truncated or overlong varint, field number 0, groups, wire types 6 and 7, and payloads that run past
 * the end. */
lens_status pb_next(pb_reader *r, pb_field *f);

/* Opens a length-delimited field as a message. LENS_ERR_FORMAT when f is not length-delimited or the nesting is
 * deeper than PB_MAX_DEPTH. */
lens_status pb_enter(const pb_reader *r, const pb_field *f, pb_reader *sub);

/* LENS_ERR_FORMAT with a message when f's wire type is not wire. */
lens_status pb_expect(const pb_field *f, pb_wire wire);

/* Decodes one varint at *pos (at most PB_MAX_VARINT_BYTES, no bits beyond 64) and advances *pos. Returns false,
 * leaving *pos, when it is truncated or overlong. */
bool pb_read_varint(const uint8_t **pos, const uint8_t *end, uint64_t *out);

/* Reinterprets fixed-width payloads. */
float pb_field_float(const pb_field *f);
double pb_field_double(const pb_field *f);

/* ---- Repeated scalars ------------------------------------------------------------------------------------------ */

typedef enum pb_scalar { PB_SCALAR_VARINT, PB_SCALAR_FIXED32, PB_SCALAR_FIXED64 } pb_scalar;

/* The elements of one occurrence of a repeated scalar field: a packed payload, or a single unpacked value. A
 * repeated field may occur many times, in either form: callers count over all occurrences, then decode. */
typedef struct pb_values {
    const uint8_t *pos, *end;
    pb_scalar kind;
    size_t offset; /* of the field's tag, for messages */
} pb_values;

/* Checks f's wire type against kind (LEN = packed) and, for the fixed kinds, that a packed payload is a whole number
 * of elements. */
lens_status pb_values_init(const pb_field *f, pb_scalar kind, pb_values *v);
/* Counts the elements, validating every varint. */
lens_status pb_values_count(const pb_values *v, size_t *count);
/* The next element (VARINT: the value; fixed kinds: the little-endian bits). False at the end or on a malformed
 * varint, which pb_values_count reports first. */
bool pb_values_next(pb_values *v, uint64_t *out);

#endif
