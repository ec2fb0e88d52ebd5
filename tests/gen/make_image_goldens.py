#!/usr/bin/env python3
"""Generates the image-layer fixtures in tests/fixtures/images/: small synthetic images in every format lens
decodes, and what Pillow 9.4 / torchvision 0.14 make of them (decoded RGB bytes, resizes, preprocessing tensors).
tests/unit/test_image.c replays tests/fixtures/images/manifest.tsv against lens.

Run from the repository root with the Python that has Pillow and torchvision:
    /usr/bin/python3 tests/gen/make_image_goldens.py
Deterministic: a fixed seed, and Pillow's encoders are deterministic, so reruns rewrite identical files.

Golden files (*.gold): 16-byte header "LGLD", u32 width, u32 height, u32 kind (0: uint8 RGB HWC, 1: float32 CHW with
3 planes), little-endian, then the data.

Manifest lines (tab-separated):
    decode  INPUT  APPLY_EXIF  GOLDEN          decode, compare bytes exactly
    prefix  INPUT  NBYTES  GOLDEN|-  STATUS    decode the first NBYTES; GOLDEN when Pillow accepts them, else the
                                               lens_status expected (Pillow raised)
    error   INPUT  STATUS                      decoding must fail with this lens_status
    resize  INPUT  W  H  FILTER  GOLDEN        decode INPUT (exact, tested above), resize, compare
    tensor  INPUT  RESIZE  CROP  FRACTION  FILTER  BGR  GOLDEN
                                               img_to_tensor with the ImageNet mean/std, compare within 1/255/std
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image, ImageOps

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "images")
W, H = 37, 23
FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
TV_FILTERS = {"nearest": T.InterpolationMode.NEAREST, "bilinear": T.InterpolationMode.BILINEAR,
              "bicubic": T.InterpolationMode.BICUBIC}
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
STATUS = {"format": 3, "unsupported": 4, "limit": 7, "io": 2}

manifest = []


def path(name):
    return os.path.join(OUT, name)


def write(name, data):
    with open(path(name), "wb") as f:
        f.write(data)


def gold_u8(name, im):
    a = np.asarray(im.convert("RGB"), dtype=np.uint8)
    h, w, _ = a.shape
    write(name, b"LGLD" + struct.pack("<III", w, h, 0) + a.tobytes())
    return name


def gold_f32(name, t):
    a = t.numpy().astype("<f4")
    c, h, w = a.shape
    assert c == 3
    write(name, b"LGLD" + struct.pack("<III", w, h, 1) + a.tobytes())
    return name


def synthetic(w=W, h=H, seed=1):
    """Gradients plus noise, with a saturated checkerboard corner so bicubic overshoots and clamps."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    r = x * 255.0 / (w - 1)
    g = y * 255.0 / (h - 1)
    b = (x + y) * 127.0 / (w + h)
    a = np.stack([r, g, b], -1) + rng.normal(0, 18, (h, w, 3))
    a[: h // 3, : w // 3] = ((x[: h // 3, : w // 3] + y[: h // 3, : w // 3]) % 2 * 255)[..., None]
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def save(name, im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    write(name, b.getvalue())
    return b.getvalue()


def pil_decode(name):
    with Image.open(path(name)) as im:
        return im.convert("RGB")


def add_decode(name, apply_exif=0):
    with Image.open(path(name)) as im:
        if apply_exif:
            im = ImageOps.exif_transpose(im)
        rgb = im.convert("RGB")
    gold = gold_u8(name + (".exif" if apply_exif else "") + ".gold", rgb)
    manifest.append(["decode", name, str(apply_exif), gold])


def pil_accepts(data):
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB")
    except Exception:
        return None


# ---- PNG writer for layouts Pillow cannot save (16-bit colour, low bit depths, interlace) --------------------------

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width, height, depth, color, rows, extra=b"", interlace=0):
    """rows: list of raw scanline bytes (no filter byte), or for interlace a function giving the pixel bytes of
    (x, y) and the bits per pixel."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace)
    if not interlace:
        raw = b"".join(b"\0" + r for r in rows)
    else:
        get, bpp_bytes = rows
        raw = b""
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                               (0, 1, 1, 2)]:
            for y in range(y0, height, dy):
                line = b"".join(get(x, y) for x in range(x0, width, dx))
                if line:
                    raw += b"\0" + line
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(raw, 9)) +
            png_chunk(b"IEND", b""))


def pack_bits(values, depth):
    out, acc, n = bytearray(), 0, 0
    for v in values:
        acc = (acc << depth) | v
        n += depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


# ---- EXIF ----------------------------------------------------------------------------------------------------------

def exif_block(orientation, big_endian=False, long_type=False):
    e = ">" if big_endian else "<"
    head = (b"MM\0*" if big_endian else b"II*\0") + struct.pack(e + "I", 8)
    if long_type:
        entry = struct.pack(e + "HHII", 0x0112, 4, 1, orientation)
    else:
        entry = struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0)
    # Two entries so the orientation is not the first one.
    other = struct.pack(e + "HHIHH", 0x0100, 3, 1, 99, 0)
    return head + struct.pack(e + "H", 2) + other + entry + struct.pack(e + "I", 0)


def jpeg_with_app1(jpeg, payload):
    seg = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + seg + jpeg[2:]


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f != "imagenet_dev_crops.tsv":
            os.remove(path(f))
    src = synthetic()
    a = np.asarray(src)

    # ---- lossless formats ----------------------------------------------------------------------------------------
    save("rgb.png", src, "PNG")
    add_decode("rgb.png")
    save("rgba.png", Image.fromarray(np.dstack([a, (np.arange(W * H) % 256).reshape(H, W).astype(np.uint8)]),
                                     "RGBA"), "PNG")
    add_decode("rgba.png")
    save("grey.png", src.convert("L"), "PNG")
    add_decode("grey.png")
    save("greyalpha.png", Image.merge("LA", [src.convert("L"), src.getchannel(0)]), "PNG")
    add_decode("greyalpha.png")
    save("palette.png", src.quantize(40), "PNG")
    add_decode("palette.png")
    pal = src.quantize(16)
    save("palette_trns.png", pal, "PNG", transparency=3)
    add_decode("palette_trns.png")
    save("rgb_trns.png", src, "PNG", transparency=(a[0, 0, 0].item(), a[0, 0, 1].item(), a[0, 0, 2].item()))
    add_decode("rgb_trns.png")
    # 16-bit layouts: distinct low bytes so taking the wrong byte shows.
    rng = np.random.default_rng(7)
    low = rng.integers(0, 256, (H, W, 4), dtype=np.uint16)
    rgba16 = np.dstack([a, a[..., :1]]).astype(np.uint16) * 256 + low
    write("rgb16.png", png_bytes(W, H, 16, 2, [rgba16[y, :, :3].astype(">u2").tobytes() for y in range(H)]))
    add_decode("rgb16.png")
    write("rgba16.png", png_bytes(W, H, 16, 6, [rgba16[y].astype(">u2").tobytes() for y in range(H)]))
    add_decode("rgba16.png")
    write("greyalpha16.png", png_bytes(W, H, 16, 4, [rgba16[y, :, [0, 3]].T.astype(">u2").tobytes()
                                                      for y in range(H)]))
    add_decode("greyalpha16.png")
    # 16-bit grey: Pillow opens it as mode "I" and convert("RGB") clamps to 255; keep some values small.
    grey16 = (rgba16[..., 1] >> np.uint16(rng.integers(0, 16, (H, W)).astype(np.uint16))).astype(np.uint16)
    write("grey16.png", png_bytes(W, H, 16, 0, [grey16[y].astype(">u2").tobytes() for y in range(H)]))
    add_decode("grey16.png")
    for depth in (1, 2, 4):
        vals = rng.integers(0, 1 << depth, (H, W))
        write(f"grey{depth}.png", png_bytes(W, H, depth, 0, [pack_bits(vals[y], depth) for y in range(H)]))
        add_decode(f"grey{depth}.png")
    vals = rng.integers(0, 16, (H, W))
    plte = png_chunk(b"PLTE", bytes(rng.integers(0, 256, 16 * 3, dtype=np.uint8)))
    write("palette4.png", png_bytes(W, H, 4, 3, [pack_bits(vals[y], 4) for y in range(H)], extra=plte))
    add_decode("palette4.png")
    write("interlaced.png", png_bytes(W, H, 8, 2, (lambda x, y: a[y, x].tobytes(), 3), interlace=1))
    add_decode("interlaced.png")

    save("rgb.bmp", src, "BMP")
    add_decode("rgb.bmp")
    save("rgb32.bmp", Image.fromarray(np.dstack([a, a[..., :1]]), "RGBA"), "BMP")
    add_decode("rgb32.bmp")
    save("palette8.bmp", src.quantize(50), "BMP")
    add_decode("palette8.bmp")
    save("grey8.bmp", src.convert("L"), "BMP")
    add_decode("grey8.bmp")
    save("bilevel.bmp", src.convert("1"), "BMP")
    add_decode("bilevel.bmp")
    # Top-down (negative height) 24-bit, hand-made.
    stride = (W * 3 + 3) & ~3
    rows = b"".join(a[y, :, ::-1].tobytes().ljust(stride, b"\0") for y in range(H))
    info = struct.pack("<IiiHHIIiiII", 40, W, -H, 1, 24, 0, len(rows), 2835, 2835, 0, 0)
    write("topdown.bmp", b"BM" + struct.pack("<IHHI", 14 + 40 + len(rows), 0, 0, 54) + info + rows)
    add_decode("topdown.bmp")
    # 4-bit palette whose 12 entries are fewer than the indices used (Pillow reads the missing ones as grey i).
    idx = rng.integers(0, 16, (H, W))
    stride4 = ((W * 4 + 31) >> 3) & ~3
    rows = b"".join(pack_bits(idx[y], 4).ljust(stride4, b"\0") for y in reversed(range(H)))
    palette = bytes(rng.integers(0, 256, 12 * 4, dtype=np.uint8))
    info = struct.pack("<IiiHHIIiiII", 40, W, H, 1, 4, 0, len(rows), 0, 0, 12, 12)
    off = 14 + 40 + len(palette)
    write("palette4_short.bmp", b"BM" + struct.pack("<IHHI", off + len(rows), 0, 0, off) + info + palette + rows)
    add_decode("palette4_short.bmp")

    save("rgb.ppm", src, "PPM")
    add_decode("rgb.ppm")
    save("grey.pgm", src.convert("L"), "PPM")
    add_decode("grey.pgm")
    g16 = grey16.astype(np.int32)
    save("grey16.pgm", Image.fromarray(g16, "I"), "PPM")
    add_decode("grey16.pgm")
    # maxval 1000 binary P6 (Pillow's rounding decoder), plain P3/P2/P1 with comments, binary P4.
    v1000 = (a.astype(np.uint32) * 1000 // 255).astype(">u2")
    write("rgb1000.ppm", b"P6\n# maxval 1000\n%d %d\n1000\n" % (W, H) + v1000.tobytes())
    add_decode("rgb1000.ppm")
    small = a[:5, :7]
    body = b"\n".join(b" ".join(b"%d" % (v * 99 // 255) for v in row.reshape(-1)) for row in small)
    write("plain.ppm", b"P3\n# plain\n7 5 # size\n99\n" + body + b"\n")
    add_decode("plain.ppm")
    body = b"\n".join(b" ".join(b"%d" % (v * 250) for v in row[:, 1]) for row in small)
    write("plain16.pgm", b"P2\n7 5\n65535\n" + body + b"\n")
    add_decode("plain16.pgm")
    bits = (a[:, :, 0] > 128).astype(np.uint8)
    write("plain.pbm", b"P1\n%d %d\n" % (W, H) + b"\n".join(b"".join(b"%d" % v for v in row) for row in bits))
    add_decode("plain.pbm")
    write("raw.pbm", b"P4\n%d %d\n" % (W, H) + b"".join(pack_bits(row, 1) for row in bits))
    add_decode("raw.pbm")

    # ---- lossy formats: lens uses the same libjpeg-turbo / libwebp, so these must match exactly too ------------------
    jpg = save("rgb.jpg", src, "JPEG", quality=90)
    add_decode("rgb.jpg")
    save("rgb444.jpg", src, "JPEG", quality=85, subsampling=0)
    add_decode("rgb444.jpg")
    save("rgb422.jpg", src, "JPEG", quality=85, subsampling=1)
    add_decode("rgb422.jpg")
    save("progressive.jpg", src, "JPEG", quality=80, progressive=True)
    add_decode("progressive.jpg")
    save("grey.jpg", src.convert("L"), "JPEG", quality=90)
    add_decode("grey.jpg")
    save("cmyk.jpg", src.convert("CMYK"), "JPEG", quality=90)
    add_decode("cmyk.jpg")
    save("lossy.webp", src, "WEBP", quality=80)
    add_decode("lossy.webp")
    save("lossless.webp", src, "WEBP", lossless=True)
    add_decode("lossless.webp")
    save("alpha.webp", Image.open(path("rgba.png")), "WEBP", quality=80)
    add_decode("alpha.webp")

    # ---- EXIF orientation ----------------------------------------------------------------------------------------
    for o in range(1, 9):
        write(f"exif{o}.jpg", jpeg_with_app1(jpg, b"Exif\0\0" + exif_block(o)))
        add_decode(f"exif{o}.jpg", 1)
    add_decode("exif6.jpg", 0)
    write("exif6_be.jpg", jpeg_with_app1(jpg, b"Exif\0\0" + exif_block(6, big_endian=True)))
    add_decode("exif6_be.jpg", 1)
    write("exif8_long.jpg", jpeg_with_app1(jpg, b"Exif\0\0" + exif_block(8, big_endian=True, long_type=True)))
    add_decode("exif8_long.jpg", 1)
    # A cut-off EXIF block must be ignored, not read past.
    write("exif_broken.jpg", jpeg_with_app1(jpg, b"Exif\0\0" + exif_block(6)[:20]))
    add_decode("exif_broken.jpg", 1)
    exif = Image.Exif()
    exif[0x0112] = 5
    save("exif5.png", src, "PNG", exif=exif.tobytes())
    add_decode("exif5.png", 1)
    exif[0x0112] = 3
    save("exif3.webp", src, "WEBP", lossless=True, exif=exif.tobytes())
    add_decode("exif3.webp", 1)

    # ---- truncation: lens must fail where Pillow fails, and decode where Pillow decodes ----------------------------
    for name, cuts in [("rgb.jpg", [len(jpg) - 2, len(jpg) - 40, len(jpg) // 2, 300, 100, 10]),
                       ("progressive.jpg", [None, 500]),
                       ("rgb.png", [None, 200, 40]), ("lossy.webp", [None, 100, 30]),
                       ("rgb.bmp", [None, 1000, 30]), ("rgb.ppm", [None, 100])]:
        data = open(path(name), "rb").read()
        for cut in cuts:
            cut = len(data) * 2 // 3 if cut is None else cut
            got = pil_accepts(data[:cut])
            if got is not None:
                manifest.append(["prefix", name, str(cut), gold_u8(f"{name}.{cut}.gold", got), "0"])
            else:
                manifest.append(["prefix", name, str(cut), "-", str(STATUS["format"])])

    # ---- bad files -----------------------------------------------------------------------------------------------
    write("text.png", b"This is not a PNG, just text with a .png name.\n")
    manifest.append(["error", "text.png", str(STATUS["format"])])
    rng_bytes = np.random.default_rng(3).integers(0, 256, 512, dtype=np.uint8).tobytes()
    write("random.bin", rng_bytes)
    manifest.append(["error", "random.bin", str(STATUS["format"])])
    write("empty.jpg", b"")
    manifest.append(["error", "empty.jpg", str(STATUS["format"])])
    manifest.append(["error", "does_not_exist.jpg", str(STATUS["io"])])
    bomb = png_bytes(1, 1, 8, 2, [b"\0\0\0"])
    bomb = bomb[:8] + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)) + bomb[33:]
    write("bomb.png", bomb)
    manifest.append(["error", "bomb.png", str(STATUS["limit"])])
    assert pil_accepts(open(path("text.png"), "rb").read()) is None
    assert pil_accepts(rng_bytes) is None

    # ---- resizing: Pillow's Image.resize, on the decoded rgb.png ---------------------------------------------------
    sizes = [(74, 46), (50, 31), (20, 12), (9, 5), (36, 23), (37, 11), (5, 40), (1, 1), (101, 7)]
    for fname, f in FILTERS.items():
        for (w, h) in sizes:
            gold = gold_u8(f"resize_{fname}_{w}x{h}.gold", src.resize((w, h), f))
            manifest.append(["resize", "rgb.png", str(w), str(h), fname, gold])
    # A larger, taller source so that 256/224-like ratios and long filter windows are covered.
    big = synthetic(61, 83, seed=5)
    save("tall.png", big, "PNG")
    for fname, f in FILTERS.items():
        for (w, h) in [(29, 40), (44, 60), (3, 100)]:
            gold = gold_u8(f"resize_tall_{fname}_{w}x{h}.gold", big.resize((w, h), f))
            manifest.append(["resize", "tall.png", str(w), str(h), fname, gold])

    # ---- torchvision eval transforms -----------------------------------------------------------------------------
    cases = [("rgb.png", 20, 16, 0, "bilinear", 0),
             ("rgb.png", 21, 16, 0, "bilinear", 0),   # odd margins: round() ties to even
             ("rgb.png", 21, 16, 0, "bicubic", 0),
             ("rgb.png", 21, 16, 0, "nearest", 1),
             ("rgb.png", 10, 16, 0, "bilinear", 0),   # crop larger than the image: zero padding
             ("rgb.png", 0, 12, 0, "bilinear", 0),    # crop only
             ("rgb.png", 14, 0, 0, "bicubic", 0),     # resize only
             ("rgb.png", 0, 16, 0.875, "bilinear", 0),  # timm crop_pct: resize floor(16 / 0.875) = 18
             ("tall.png", 24, 24, 0, "bilinear", 1),
             ("rgb.png", 25, 30, 0, "bilinear", 0)]   # pads the height only (40x25 -> 30x30)
    for i, (name, resize, crop, fraction, fname, bgr) in enumerate(cases):
        ops = []
        size = int(crop / fraction) if fraction else resize
        if size:
            ops.append(T.Resize(size, interpolation=TV_FILTERS[fname]))
        if crop:
            ops.append(T.CenterCrop(crop))
        ops.append(T.ToTensor())
        mean, std = MEAN, STD
        t = T.Compose(ops)(pil_decode(name))
        if bgr:
            t = t[[2, 1, 0]]
        t = T.Normalize(mean, std)(t)
        gold = gold_f32(f"tensor_{i}.gold", t)
        manifest.append(["tensor", name, str(resize), str(crop), repr(float(fraction)), fname, str(bgr), gold])

    with open(path("manifest.tsv"), "w") as f:
        for row in manifest:
            f.write("\t".join(row) + "\n")
    total = sum(os.path.getsize(path(f)) for f in os.listdir(OUT))
    print(f"{len(manifest)} cases, {len(os.listdir(OUT))} files, {total} bytes in {OUT}")


if __name__ == "__main__":
    sys.exit(main())
