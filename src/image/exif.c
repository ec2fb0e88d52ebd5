/* exif.c — finds the Orientation tag (0x0112) in IFD0 of an EXIF/TIFF block, and flips or rotates a decoded image the
 * way PIL.ImageOps.exif_transpose does. Reads only the bytes it is given, every offset bounds-checked. */
#include <stdlib.h>
#include <string.h>

#include "image.h"

static uint32_t read_u16(const uint8_t *p, int big) { return big ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0]; }

static uint32_t read_u32(const uint8_t *p, int big) {
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int img_exif_orientation(const uint8_t *data, size_t size) {
    if (!data) return 1;
    if (size >= 6 && memcmp(data, "Exif\0\0", 6) == 0) {
        data += 6;
        size -= 6;
    }
    if (size < 8) return 1;
    int big;
    if (memcmp(data, "II*\0", 4) == 0) big = 0;
    else if (memcmp(data, "MM\0*", 4) == 0) big = 1;
    else return 1;
    uint32_t ifd = read_u32(data + 4, big);
    if (ifd > size || size - ifd < 2) return 1;
    uint32_t count = read_u16(data + ifd, big);
    if ((size - ifd - 2) / 12 < count) count = (uint32_t)((size - ifd - 2) / 12);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *entry = data + ifd + 2 + 12 * (size_t)i;
        if (read_u16(entry, big) != 0x0112) continue;
        uint32_t type = read_u16(entry + 2, big), n = read_u32(entry + 4, big);
        if (n != 1) return 1;
        uint32_t value;
        if (type == 3) value = read_u16(entry + 8, big);       /* SHORT, the standard */
        else if (type == 4) value = read_u32(entry + 8, big);  /* LONG, seen in the wild; PIL accepts it */
        else return 1;
        return value >= 1 && value <= 8 ? (int)value : 1;
    }
    return 1;
}

lens_status img_apply_orientation(img_image *img, int orientation) {
    if (orientation < 2 || orientation > 8) return LENS_OK;
    const int w = img->width, h = img->height;
    const int swap = orientation >= 5;
    img_image out;
    lens_status st = img_alloc(&out, swap ? h : w, swap ? w : h);
    if (st != LENS_OK) return st;
    const int ow = out.width, oh = out.height;
    for (int y = 0; y < oh; y++) {
        uint8_t *dst = out.rgb + (size_t)y * ow * 3;
        for (int x = 0; x < ow; x++) {
            int sx, sy;
            switch (orientation) {
            case 2: sx = w - 1 - x; sy = y; break;          /* FLIP_LEFT_RIGHT */
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;  /* ROTATE_180 */
            case 4: sx = x; sy = h - 1 - y; break;          /* FLIP_TOP_BOTTOM */
            case 5: sx = y; sy = x; break;                  /* TRANSPOSE */
            case 6: sx = y; sy = h - 1 - x; break;          /* ROTATE_270: 90 degrees clockwise */
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;  /* TRANSVERSE */
            default: sx = w - 1 - y; sy = x; break;         /* 8, ROTATE_90: 90 degrees counter-clockwise */
            }
            memcpy(dst + 3 * (size_t)x, img->rgb + ((size_t)sy * w + sx) * 3, 3);
        }
    }
    free(img->rgb);
    *img = out;
    return LENS_OK;
}
