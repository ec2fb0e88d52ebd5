/* test_pb.c — the protobuf wire reader: every wire type, unknown fields, packed and unpacked repeated scalars, and
 * malformed input (truncated and overlong varints, lengths past the end, groups, bad wire types, deep nesting,
 * random bytes). */
#include <string.h>

#include "formats/pb.h"
#include "test.h"

static bool message_has(const char *needle) { return strstr(core_last_error(), needle) != NULL; }

/* Reads every field of buf; returns the status of the first failure. */
static lens_status read_all(const uint8_t *buf, size_t size, pb_field *last, int *count) {
    pb_reader r;
    pb_reader_init(&r, buf, size);
    *count = 0;
    while (pb_more(&r)) {
        lens_status st = pb_next(&r, last);
        if (st) return st;
        (*count)++;
    }
    return LENS_OK;
}

static void test_varints(void) {
    const uint8_t one[] = {0x01}, v300[] = {0xac, 0x02};
    const uint8_t max[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    const uint8_t overflow[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    const uint8_t padded_zero[] = {0x80, 0x80, 0x00}; /* non-minimal but legal */
    const uint8_t truncated[] = {0x80, 0x80};
    const uint8_t *p;
    uint64_t v = 0;

    p = one;
    CHECK(pb_read_varint(&p, one + 1, &v) && v == 1 && p == one + 1);
    p = v300;
    CHECK(pb_read_varint(&p, v300 + 2, &v) && v == 300 && p == v300 + 2);
    p = max;
    CHECK(pb_read_varint(&p, max + 10, &v) && v == UINT64_MAX && p == max + 10);
    p = padded_zero;
    CHECK(pb_read_varint(&p, padded_zero + 3, &v) && v == 0);
    p = overflow;
    CHECK(!pb_read_varint(&p, overflow + 10, &v) && p == overflow);
    p = eleven;
    CHECK(!pb_read_varint(&p, eleven + 11, &v) && p == eleven);
    p = truncated;
    CHECK(!pb_read_varint(&p, truncated + 2, &v) && p == truncated);
    p = one;
    CHECK(!pb_read_varint(&p, one, &v)); /* empty */
    /* a varint that would be valid but is cut by the end pointer */
    p = v300;
    CHECK(!pb_read_varint(&p, v300 + 1, &v));
}

static void test_wire_types(void) {
    /* field 1 varint 150; field 2 fixed64 0x0102030405060708; field 3 "abc"; field 4 fixed32 1.5f */
    const uint8_t msg[] = {0x08, 0x96, 0x01, 0x11, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
                           0x1a, 0x03, 'a',  'b',  'c',  0x25, 0x00, 0x00, 0xc0, 0x3f};
    pb_reader r;
    pb_field f;
    pb_reader_init(&r, msg, sizeof msg);
    CHECK(pb_next(&r, &f) == LENS_OK && f.number == 1 && f.wire == PB_WIRE_VARINT && f.value == 150 && f.offset == 0);
    CHECK(f.data == msg + 1 && f.len == 2);
    CHECK(pb_next(&r, &f) == LENS_OK && f.number == 2 && f.wire == PB_WIRE_I64 && f.value == 0x0102030405060708ull);
    CHECK(f.offset == 3 && f.len == 8);
    CHECK(pb_next(&r, &f) == LENS_OK && f.number == 3 && f.wire == PB_WIRE_LEN && f.len == 3 &&
          !memcmp(f.data, "abc", 3) && f.offset == 12);
    CHECK(pb_next(&r, &f) == LENS_OK && f.number == 4 && f.wire == PB_WIRE_I32);
    CHECK_NEAR(pb_field_float(&f), 1.5, 0);
    CHECK(!pb_more(&r) && pb_offset(&r) == sizeof msg);
    CHECK(pb_expect(&f, PB_WIRE_I32) == LENS_OK);
    CHECK(pb_expect(&f, PB_WIRE_VARINT) == LENS_ERR_FORMAT && message_has("expected varint, found fixed32"));

    const uint8_t dbl[] = {0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f}; /* field 1 fixed64 1.5 */
    pb_reader_init(&r, dbl, sizeof dbl);
    CHECK(pb_next(&r, &f) == LENS_OK);
    CHECK_NEAR(pb_field_double(&f), 1.5, 0);

    /* large field numbers: 2^29 - 1 is the largest allowed */
    const uint8_t big[] = {0xf8, 0xff, 0xff, 0xff, 0x0f, 0x05};
    pb_reader_init(&r, big, sizeof big);
    CHECK(pb_next(&r, &f) == LENS_OK && f.number == 536870911u && f.value == 5);
    const uint8_t too_big[] = {0x80, 0x80, 0x80, 0x80, 0x10, 0x05};
    pb_reader_init(&r, too_big, sizeof too_big);
    CHECK(pb_next(&r, &f) == LENS_ERR_FORMAT && message_has("invalid field number"));
}

static void test_unknown_fields_are_skipped(void) {
    /* unknown fields 100..103 of every wire type (group excepted), then field 1 = 7 */
    const uint8_t msg[] = {
        0xa0, 0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, /* 100 varint, 10 bytes */
        0xa9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8,                                     /* 101 fixed64 */
        0xb2, 0x06, 0x04, 0x08, 0x01, 0x10, 0x02,                               /* 102 LEN (a message) */
        0xbd, 0x06, 1, 2, 3, 4,                                                 /* 103 fixed32 */
        0xb2, 0x06, 0x00,                                                       /* 102 empty LEN */
        0x08, 0x07};
    pb_reader r;
    pb_field f;
    int seen = 0;
    uint64_t value = 0;
    lens_status st = LENS_OK;
    pb_reader_init(&r, msg, sizeof msg);
    while (!st && pb_more(&r)) {
        st = pb_next(&r, &f);
        seen++;
        if (!st && f.number == 1) value = f.value;
    }
    CHECK(st == LENS_OK);
    CHECK(seen == 6);
    CHECK(value == 7);
}

static void test_malformed(void) {
    pb_field f;
    int n;
    const uint8_t truncated_tag[] = {0x80};
    CHECK(read_all(truncated_tag, 1, &f, &n) == LENS_ERR_FORMAT && message_has("truncated") &&
          message_has("offset 0"));
    const uint8_t overlong_tag[] = {0x88, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    CHECK(read_all(overlong_tag, sizeof overlong_tag, &f, &n) == LENS_ERR_FORMAT && message_has("longer than 10"));
    const uint8_t truncated_value[] = {0x08, 0x96}; /* field 1 varint, continuation bit, then end */
    CHECK(read_all(truncated_value, sizeof truncated_value, &f, &n) == LENS_ERR_FORMAT &&
          message_has("truncated") && message_has("field 1"));
    const uint8_t overlong_value[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK(read_all(overlong_value, sizeof overlong_value, &f, &n) == LENS_ERR_FORMAT &&
          message_has("longer than 10"));
    /* field 7 at offset 2 claims 5000 bytes, 3 remain */
    const uint8_t past_end[] = {0x08, 0x01, 0x3a, 0x88, 0x27, 'a', 'b', 'c'};
    CHECK(read_all(past_end, sizeof past_end, &f, &n) == LENS_ERR_FORMAT && n == 1);
    CHECK_MSG(!strcmp(core_last_error(), "truncated: field 7 at offset 2 needs 5000 bytes, 3 remain"), "%s",
              core_last_error());
    /* a length so large it would wrap a pointer */
    const uint8_t huge_len[] = {0x3a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'};
    CHECK(read_all(huge_len, sizeof huge_len, &f, &n) == LENS_ERR_FORMAT && message_has("needs"));
    const uint8_t truncated_length[] = {0x3a, 0x80};
    CHECK(read_all(truncated_length, sizeof truncated_length, &f, &n) == LENS_ERR_FORMAT && message_has("length"));
    const uint8_t short_fixed32[] = {0x0d, 1, 2, 3};
    CHECK(read_all(short_fixed32, sizeof short_fixed32, &f, &n) == LENS_ERR_FORMAT &&
          message_has("needs 4 bytes, 3 remain"));
    const uint8_t short_fixed64[] = {0x09, 1, 2, 3, 4, 5, 6, 7};
    CHECK(read_all(short_fixed64, sizeof short_fixed64, &f, &n) == LENS_ERR_FORMAT &&
          message_has("needs 8 bytes, 7 remain"));
    const uint8_t start_group[] = {0x0b, 0x0c};
    CHECK(read_all(start_group, sizeof start_group, &f, &n) == LENS_ERR_FORMAT && message_has("groups"));
    const uint8_t end_group[] = {0x0c};
    CHECK(read_all(end_group, sizeof end_group, &f, &n) == LENS_ERR_FORMAT && message_has("groups"));
    const uint8_t wire6[] = {0x0e, 0x00}, wire7[] = {0x0f, 0x00};
    CHECK(read_all(wire6, sizeof wire6, &f, &n) == LENS_ERR_FORMAT && message_has("invalid wire type 6"));
    CHECK(read_all(wire7, sizeof wire7, &f, &n) == LENS_ERR_FORMAT && message_has("invalid wire type 7"));
    const uint8_t field_zero[] = {0x00, 0x01};
    CHECK(read_all(field_zero, sizeof field_zero, &f, &n) == LENS_ERR_FORMAT && message_has("field number 0"));
    /* an empty message is valid */
    CHECK(read_all(field_zero, 0, &f, &n) == LENS_OK && n == 0);
}

static void test_nesting(void) {
    /* 100 levels of field 1 { field 1 { ... } }: each level is a tag and a two-byte length */
    enum { LEVELS = 100 };
    uint8_t buf[3 * LEVELS];
    for (int i = 0; i < LEVELS; i++) {
        unsigned len = 3u * (LEVELS - 1 - (unsigned)i);
        buf[3 * i] = 0x0a;
        buf[3 * i + 1] = (uint8_t)((len & 0x7f) | 0x80);
        buf[3 * i + 2] = (uint8_t)(len >> 7);
    }
    pb_reader r, sub;
    pb_field f;
    pb_reader_init(&r, buf, sizeof buf);
    int depth = 0;
    lens_status st = LENS_OK;
    while (!st) {
        if (!pb_more(&r)) break;
        if ((st = pb_next(&r, &f))) break;
        if ((st = pb_enter(&r, &f, &sub))) break;
        r = sub;
        depth++;
    }
    CHECK(st == LENS_ERR_FORMAT && message_has("nested deeper than"));
    CHECK_MSG(depth == PB_MAX_DEPTH, "depth %d", depth);

    const uint8_t varint[] = {0x08, 0x01};
    pb_reader_init(&r, varint, sizeof varint);
    CHECK(pb_next(&r, &f) == LENS_OK);
    CHECK(pb_enter(&r, &f, &sub) == LENS_ERR_FORMAT && message_has("expected length-delimited"));

    /* a sub-reader stops at its own end and keeps file offsets */
    const uint8_t nested[] = {0x0a, 0x02, 0x10, 0x05, 0x18, 0x09};
    pb_reader_init(&r, nested, sizeof nested);
    CHECK(pb_next(&r, &f) == LENS_OK && pb_enter(&r, &f, &sub) == LENS_OK);
    CHECK(pb_next(&sub, &f) == LENS_OK && f.number == 2 && f.value == 5 && f.offset == 2);
    CHECK(!pb_more(&sub));
    CHECK(pb_next(&r, &f) == LENS_OK && f.number == 3 && f.value == 9);
}

static void test_repeated(void) {
    pb_reader r;
    pb_field f;
    pb_values v;
    size_t count = 0;
    uint64_t x;

    /* packed varints: 1, 300, 2^63 */
    const uint8_t packed[] = {0x0a, 13, 0x01, 0xac, 0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    pb_reader_init(&r, packed, sizeof packed);
    CHECK(pb_next(&r, &f) == LENS_OK);
    CHECK(pb_values_init(&f, PB_SCALAR_VARINT, &v) == LENS_OK && pb_values_count(&v, &count) == LENS_OK && count == 3);
    uint64_t got[3] = {0};
    for (int i = 0; i < 3; i++) CHECK(pb_values_next(&v, &got[i]));
    CHECK(!pb_values_next(&v, &x));
    CHECK(got[0] == 1 && got[1] == 300 && got[2] == 1ull << 63);

    /* unpacked: the same field three times, one value each */
    const uint8_t unpacked[] = {0x08, 0x01, 0x08, 0xac, 0x02, 0x08, 0x03};
    pb_reader_init(&r, unpacked, sizeof unpacked);
    uint64_t sum = 0;
    size_t total = 0;
    while (pb_more(&r)) {
        CHECK(pb_next(&r, &f) == LENS_OK);
        CHECK(pb_values_init(&f, PB_SCALAR_VARINT, &v) == LENS_OK && pb_values_count(&v, &count) == LENS_OK);
        total += count;
        while (pb_values_next(&v, &x)) sum += x;
    }
    CHECK(total == 3 && sum == 304);

    /* packed floats 1.0, -2.0 and an unpacked float */
    const uint8_t floats[] = {0x0a, 8, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0x0d, 0, 0, 0x40, 0x40};
    pb_reader_init(&r, floats, sizeof floats);
    CHECK(pb_next(&r, &f) == LENS_OK && pb_values_init(&f, PB_SCALAR_FIXED32, &v) == LENS_OK);
    CHECK(pb_values_count(&v, &count) == LENS_OK && count == 2);
    float fv[3];
    for (int i = 0; i < 2; i++) {
        uint32_t bits;
        CHECK(pb_values_next(&v, &x));
        bits = (uint32_t)x;
        memcpy(&fv[i], &bits, 4);
    }
    CHECK(pb_next(&r, &f) == LENS_OK && pb_values_init(&f, PB_SCALAR_FIXED32, &v) == LENS_OK);
    CHECK(pb_values_count(&v, &count) == LENS_OK && count == 1 && pb_values_next(&v, &x));
    uint32_t bits = (uint32_t)x;
    memcpy(&fv[2], &bits, 4);
    CHECK_NEAR(fv[0], 1.0, 0);
    CHECK_NEAR(fv[1], -2.0, 0);
    CHECK_NEAR(fv[2], 3.0, 0);

    /* packed doubles: 16 bytes = 2 */
    const uint8_t doubles[] = {0x0a, 16, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40};
    pb_reader_init(&r, doubles, sizeof doubles);
    CHECK(pb_next(&r, &f) == LENS_OK && pb_values_init(&f, PB_SCALAR_FIXED64, &v) == LENS_OK);
    CHECK(pb_values_count(&v, &count) == LENS_OK && count == 2);

    /* packed fixed32 whose length is not a multiple of 4 */
    const uint8_t ragged[] = {0x0a, 5, 0, 0, 0x80, 0x3f, 0};
    pb_reader_init(&r, ragged, sizeof ragged);
    CHECK(pb_next(&r, &f) == LENS_OK);
    CHECK(pb_values_init(&f, PB_SCALAR_FIXED32, &v) == LENS_ERR_FORMAT && message_has("not a multiple of 4"));

    /* packed varints whose last one is cut off inside the payload */
    const uint8_t cut[] = {0x0a, 3, 0x01, 0x02, 0x80};
    pb_reader_init(&r, cut, sizeof cut);
    CHECK(pb_next(&r, &f) == LENS_OK && pb_values_init(&f, PB_SCALAR_VARINT, &v) == LENS_OK);
    CHECK(pb_values_count(&v, &count) == LENS_ERR_FORMAT && message_has("truncated"));
    /* packed varint longer than 10 bytes */
    const uint8_t long_packed[] = {0x0a, 11, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    pb_reader_init(&r, long_packed, sizeof long_packed);
    CHECK(pb_next(&r, &f) == LENS_OK && pb_values_init(&f, PB_SCALAR_VARINT, &v) == LENS_OK);
    CHECK(pb_values_count(&v, &count) == LENS_ERR_FORMAT && message_has("longer than 10"));

    /* wrong wire type for the kind */
    const uint8_t fixed[] = {0x0d, 0, 0, 0, 0};
    pb_reader_init(&r, fixed, sizeof fixed);
    CHECK(pb_next(&r, &f) == LENS_OK);
    CHECK(pb_values_init(&f, PB_SCALAR_VARINT, &v) == LENS_ERR_FORMAT && message_has("expected varint"));
    CHECK(pb_values_init(&f, PB_SCALAR_FIXED64, &v) == LENS_ERR_FORMAT && message_has("expected fixed64"));

    /* empty packed payload: zero elements */
    const uint8_t empty[] = {0x0a, 0};
    pb_reader_init(&r, empty, sizeof empty);
    CHECK(pb_next(&r, &f) == LENS_OK && pb_values_init(&f, PB_SCALAR_VARINT, &v) == LENS_OK);
    CHECK(pb_values_count(&v, &count) == LENS_OK && count == 0 && !pb_values_next(&v, &x));
}

/* Walks buf as if every length-delimited field were a message and every one a packed varint list, the way a
 * careless importer might; everything must fail cleanly or succeed, never read out of bounds (ASan checks). */
static int walk(const pb_reader *r0, int *errors) {
    pb_reader r = *r0;
    int fields = 0;
    while (pb_more(&r)) {
        pb_field f;
        core_clear_error();
        if (pb_next(&r, &f)) {
            if (!core_last_error()[0]) (*errors)++;
            return fields;
        }
        fields++;
        if (f.wire == PB_WIRE_LEN) {
            pb_reader sub;
            pb_values v;
            size_t count;
            uint64_t x;
            if (!pb_enter(&r, &f, &sub)) fields += walk(&sub, errors);
            if (!pb_values_init(&f, PB_SCALAR_VARINT, &v) && !pb_values_count(&v, &count)) {
                size_t n = 0;
                while (pb_values_next(&v, &x)) n++;
                if (n != count) (*errors)++;
            }
        }
    }
    return fields;
}

static void test_random_bytes(void) {
    uint64_t state = 0x9e3779b97f4a7c15ull;
    int errors = 0, total_fields = 0;
    uint8_t buf[256];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)(iter % 256);
        for (size_t i = 0; i < n; i++) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            /* bias towards small bytes so that plausible tags and lengths are common */
            buf[i] = (uint8_t)(iter & 1 ? state : state % 24);
        }
        pb_reader r;
        pb_reader_init(&r, buf, n);
        core_clear_error();
        total_fields += walk(&r, &errors);
    }
    CHECK_MSG(errors == 0, "%d errors without a message or miscounted values", errors);
    CHECK(total_fields > 10000); /* the walk did find fields to descend into */
}

int main(void) {
    test_varints();
    test_wire_types();
    test_unknown_fields_are_skipped();
    test_malformed();
    test_nesting();
    test_repeated();
    test_random_bytes();
    return test_finish("test_pb");
}
