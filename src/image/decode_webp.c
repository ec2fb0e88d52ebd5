/* decode_webp.c — WebP (lossy, lossless, with or without alpha) through libwebp, alpha dropped as PIL's
 * convert("RGB") does; the first frame only for still images (animations are refused). Also walks the RIFF chunks
 * for an EXIF chunk's orientation. */
#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>

#include "image.h"

static uint32_t read_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int webp_orientation(const uint8_t *data, size_t size) {
    size_t pos = 12;
    while (pos <= size && size - pos >= 8) {
        uint32_t length = read_le32(data + pos + 4);
        const uint8_t *payload = data + pos + 8;
        size_t available = size - pos - 8;
        if (length > available) return 1;
        if (memcmp(data + pos, "EXIF", 4) == 0) return img_exif_orientation(payload, length);
        pos += 8 + (size_t)length + (length & 1);
    }
    return 1;
}

lens_status img_decode_webp(const uint8_t *data, size_t size, const char *name, int64_t max_pixels, img_image *out,
                            int *orientation) {
    *orientation = 1;
    WebPBitstreamFeatures features;
    VP8StatusCode code = WebPGetFeatures(data, size, &features);
    if (code == VP8_STATUS_NOT_ENOUGH_DATA) return core_fail(LENS_ERR_FORMAT, "%s: image file is truncated", name);
    if (code != VP8_STATUS_OK) return core_fail(LENS_ERR_FORMAT, "%s: corrupt WebP header (status %d)", name, (int)code);
    lens_status st = img_check_size(name, features.width, features.height, max_pixels);
    if (st != LENS_OK) return st;
    if (features.has_animation)
        return core_fail(LENS_ERR_UNSUPPORTED, "%s: animated WebP is not supported", name);
    st = img_alloc(out, features.width, features.height);
    if (st != LENS_OK) return core_fail_context(st, "%s", name);
    size_t stride = (size_t)out->width * 3;
    if (!WebPDecodeRGBInto(data, size, out->rgb, stride * (size_t)out->height, (int)stride)) {
        img_free(out);
        return core_fail(LENS_ERR_FORMAT, "%s: corrupt or truncated WebP data", name);
    }
    *orientation = webp_orientation(data, size);
    return LENS_OK;
}
