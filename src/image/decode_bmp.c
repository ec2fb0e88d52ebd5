/* decode_bmp.c — uncompressed BMP as PIL reads it: 1/4/8-bit palette, 24-bit BGR, 32-bit BGRX or BITFIELDS with the
 * byte-aligned masks PIL accepts; bottom-up or top-down rows; OS/2 (12-byte) and Windows (40/64/108/124-byte)
 * headers. Run-length and 16-bit files are refused as unsupported. Every offset is checked against the data. */
#include <stdlib.h>
#include <string.h>

#include "image.h"

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Byte position (0..3) of an 8-bit-aligned, 8-bit-wide channel mask, or -1. */
static int mask_byte(uint32_t mask) {
    for (int i = 0; i < 4; i++)
        if (mask == 0xFFu << (8 * i)) return i;
    return -1;
}

lens_status img_decode_bmp(const uint8_t *data, size_t size, const char *name, int64_t max_pixels, img_image *out) {
    if (size < 18) return core_fail(LENS_ERR_FORMAT, "%s: image file is truncated (BMP header)", name);
    uint32_t data_offset = le32(data + 10), header_size = le32(data + 14);
    if (header_size != 12 && header_size != 40 && header_size != 64 && header_size != 108 && header_size != 124)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: unsupported BMP header type (%u)", name, (unsigned)header_size);
    if (size - 14 < header_size) return core_fail(LENS_ERR_FORMAT, "%s: image file is truncated (BMP header)", name);
    const uint8_t *h = data + 14;
    int64_t width, height;
    int top_down = 0;
    uint32_t bits, compression = 0, colors = 0, palette_entry = 4;
    uint32_t masks[3] = {0xFF0000, 0xFF00, 0xFF};
    if (header_size == 12) {
        width = le16(h + 4);
        height = le16(h + 6);
        bits = le16(h + 10);
        palette_entry = 3;
    } else {
        width = (int32_t)le32(h + 4);
        uint32_t raw_height = le32(h + 8);
        /* A negative height means rows are stored top-down. */
        top_down = (raw_height >> 24) == 0xFF;
        height = top_down ? (int64_t)((1ull << 32) - raw_height) : (int64_t)raw_height;
        bits = le16(h + 14);
        compression = le32(h + 16);
        colors = le32(h + 32);
        if (compression == 3) { /* BITFIELDS: masks in the header (V4/V5) or right after a 40-byte one */
            if (header_size - 4 >= 52) { /* as PIL: a 64-byte OS/2 header counts too */
                for (int i = 0; i < 3; i++) masks[i] = le32(h + 40 + 4 * i);
            } else {
                if (size - 14 - header_size < 12)
                    return core_fail(LENS_ERR_FORMAT, "%s: image file is truncated (BMP masks)", name);
                for (int i = 0; i < 3; i++) masks[i] = le32(h + header_size + 4 * i);
            }
        }
    }
    if (bits != 1 && bits != 4 && bits != 8 && bits != 24 && bits != 32)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: unsupported BMP pixel depth (%u)", name, (unsigned)bits);
    if (compression == 1 || compression == 2)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: run-length encoded BMP is not supported", name);
    int byte_r = 2, byte_g = 1, byte_b = 0;
    if (compression == 3) {
        if (bits == 24 && !(masks[0] == 0xFF0000 && masks[1] == 0xFF00 && masks[2] == 0xFF))
            return core_fail(LENS_ERR_UNSUPPORTED, "%s: unsupported BMP bitfields layout", name);
        if (bits != 24 && bits != 32)
            return core_fail(LENS_ERR_UNSUPPORTED, "%s: unsupported BMP bitfields layout", name);
        if (bits == 32 && !(masks[0] == 0 && masks[1] == 0 && masks[2] == 0)) {
            byte_r = mask_byte(masks[0]);
            byte_g = mask_byte(masks[1]);
            byte_b = mask_byte(masks[2]);
            if (byte_r < 0 || byte_g < 0 || byte_b < 0)
                return core_fail(LENS_ERR_UNSUPPORTED, "%s: unsupported BMP bitfields layout", name);
        }
    } else if (compression != 0) {
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: unsupported BMP compression (%u)", name, (unsigned)compression);
    }
    lens_status st = img_check_size(name, width, height, max_pixels);
    if (st != LENS_OK) return st;

    uint8_t palette[256][3];
    if (bits <= 8) {
        if (colors == 0) colors = 1u << bits;
        if (colors > 65536) return core_fail(LENS_ERR_FORMAT, "%s: unsupported BMP palette size (%u)", name, colors);
        /* Indices past the palette read grey i, the ramp PIL's palettes start from. */
        for (int i = 0; i < 256; i++) palette[i][0] = palette[i][1] = palette[i][2] = (uint8_t)i;
        size_t start = 14 + (size_t)header_size;
        uint32_t used = colors < 256 ? colors : 256;
        if ((size - start) / palette_entry < used)
            return core_fail(LENS_ERR_FORMAT, "%s: image file is truncated (BMP palette)", name);
        for (uint32_t i = 0; i < used; i++) {
            const uint8_t *p = data + start + (size_t)i * palette_entry;
            palette[i][0] = p[2];
            palette[i][1] = p[1];
            palette[i][2] = p[0];
        }
        /* PIL skips the palette when the header points the pixels right at it. */
        if (data_offset == start) data_offset += 4 * colors;
    }

    const int w = (int)width, hgt = (int)height;
    size_t stride = (((size_t)w * bits + 31) >> 3) & ~(size_t)3;
    if (data_offset > size || (size - data_offset) / stride < (size_t)hgt)
        return core_fail(LENS_ERR_FORMAT, "%s: image file is truncated (BMP pixel data)", name);
    st = img_alloc(out, w, hgt);
    if (st != LENS_OK) return core_fail_context(st, "%s", name);
    for (int y = 0; y < hgt; y++) {
        const uint8_t *src = data + data_offset + stride * (size_t)(top_down ? y : hgt - 1 - y);
        uint8_t *dst = out->rgb + (size_t)y * w * 3;
        if (bits == 24) {
            for (int x = 0; x < w; x++, src += 3, dst += 3) {
                dst[0] = src[2];
                dst[1] = src[1];
                dst[2] = src[0];
            }
        } else if (bits == 32) {
            for (int x = 0; x < w; x++, src += 4, dst += 3) {
                dst[0] = src[byte_r];
                dst[1] = src[byte_g];
                dst[2] = src[byte_b];
            }
        } else {
            const int per_byte = 8 / (int)bits, mask = (1 << bits) - 1;
            for (int x = 0; x < w; x++, dst += 3) {
                int shift = 8 - (int)bits * (x % per_byte + 1);
                int index = (src[x / per_byte] >> shift) & mask;
                memcpy(dst, palette[index], 3);
            }
        }
    }
    return LENS_OK;
}
