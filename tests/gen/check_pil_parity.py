#!/usr/bin/env python3
"""Pixel parity of lens's image pipeline with PIL + torchvision on the ImageNet dev images.

    /usr/bin/python3 tests/gen/check_pil_parity.py
        For each JPEG in ../shared/data/imagenet-dev, computes with PIL the 224x224 uint8 crop torchvision's eval
        transform sees (Image.open(path).convert("RGB"), Resize(256), CenterCrop(224); no EXIF transpose, as
        torchvision's loader does none) and writes tests/fixtures/images/imagenet_dev_crops.tsv:
        file, crc32 of the crop bytes (HWC RGB), and the per-channel byte sums. Also reports EXIF orientations.

    /usr/bin/python3 tests/gen/check_pil_parity.py --compare DIR
        Compares raw crops that lens wrote (LENS_DUMP_DIR=DIR build-*/test_image_dev writes DIR/<file>.rgb) with
        PIL's: how many match exactly and the largest absolute difference per pixel.

Run from the repository root.
"""
import os
import sys
import zlib

import numpy as np
import torchvision.transforms as T
from PIL import Image

DEV = os.path.join("..", "shared", "data", "imagenet-dev")
TSV = os.path.join("tests", "fixtures", "images", "imagenet_dev_crops.tsv")
TRANSFORM = T.Compose([T.Resize(256), T.CenterCrop(224)])


def files():
    return sorted(f for f in os.listdir(DEV) if f.lower().endswith((".jpeg", ".jpg")))


def pil_crop(name):
    with open(os.path.join(DEV, name), "rb") as f:
        im = Image.open(f)
        orientation = im.getexif().get(0x0112)
        rgb = im.convert("RGB")
    a = np.asarray(TRANSFORM(rgb), dtype=np.uint8)
    assert a.shape == (224, 224, 3), a.shape
    return a, orientation


def write_tsv():
    rows, orientations = [], {}
    for name in files():
        a, orientation = pil_crop(name)
        if orientation is not None:
            orientations[name] = orientation
        sums = a.reshape(-1, 3).sum(0, dtype=np.int64)
        rows.append(f"{name}\t{zlib.crc32(a.tobytes()) & 0xFFFFFFFF:08x}\t{sums[0]}\t{sums[1]}\t{sums[2]}")
    with open(TSV, "w") as f:
        f.write("# file\tcrc32 (hex) of PIL's 224x224x3 crop\tsum R\tsum G\tsum B\n")
        f.write("\n".join(rows) + "\n")
    print(f"{len(rows)} images -> {TSV}")
    other = {k: v for k, v in orientations.items() if v != 1}
    print(f"EXIF orientation tags: {len(orientations)} images carry one; not 1: {other if other else 'none'}")


def compare(directory):
    exact, worst, worst_name, missing, diff_pixels = 0, 0, None, 0, 0
    names = files()
    for name in names:
        path = os.path.join(directory, name + ".rgb")
        if not os.path.exists(path):
            missing += 1
            continue
        got = np.fromfile(path, dtype=np.uint8).reshape(224, 224, 3)
        ref, _ = pil_crop(name)
        d = np.abs(got.astype(np.int16) - ref.astype(np.int16))
        if d.max() == 0:
            exact += 1
        diff_pixels += int((d > 0).sum())
        if d.max() > worst:
            worst, worst_name = int(d.max()), name
    print(f"{len(names) - missing} compared ({missing} missing): {exact} exact; "
          f"max abs diff {worst} ({worst_name}); differing channel values {diff_pixels}")
    return 0 if missing == 0 and worst <= 1 else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2]))
    write_tsv()
