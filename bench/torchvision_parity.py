#!/usr/bin/python3
"""Checks lens against PyTorch on every torchvision 0.14 classification architecture.

For each model: build it with random but typical weights (tests/gen/make_model_fixtures.py's
make_typical), export it with torch.onnx.export (opset 17, dynamic batch, input "input", output
"logits"), run PyTorch on a fixed batch-2 input, then `lens run -m model.onnx -i in.npy -o out.npy`,
and compare. One line per model, then "N passed, M failed".

The reference is PyTorch's output computed in float64 (after the export, which is float32); the
"torch fp32" column is PyTorch's own float32 error against it, the noise floor an fp32 engine can
expect. PASS means max|lens - reference| <= 1e-3 * max|reference|. Export failures are FAILED-EXPORT, a lens
that exits non-zero is FAILED-RUN; both count as failed. With --no-lens only the PyTorch side runs
(build, export, reference logits), which is how the export column in bench/README.md was measured.

Needs /usr/bin/python3 with torch 1.13, torchvision 0.14, onnx 1.12, numpy. Not run by CI.
Examples:
  bench/torchvision_parity.py --skip-large
  bench/torchvision_parity.py --only resnet50,swin_t --keep
  bench/torchvision_parity.py --only 'efficientnet_*' --no-lens
"""
import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import time
import warnings

import numpy as np
import torch
import torchvision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "gen"))
from make_model_fixtures import export_onnx, float64_reference, make_typical, seed_for  # noqa: E402

warnings.filterwarnings("ignore")

TOLERANCE = 1e-3
LARGE_PARAMS = 100_000_000  # --skip-large skips models above this (vgg*, vit_l/h, big regnets, ...)

# Constructor arguments beyond weights=None. googlenet and inception_v3 get transform_input=True
# because their ImageNet weights switch it on, so that is the graph users actually run.
EXTRA_ARGS = {
    "googlenet": {"aux_logits": False, "transform_input": True, "init_weights": True},
    "inception_v3": {"aux_logits": False, "transform_input": True, "init_weights": True},
}
IMAGE_SIZE = {"inception_v3": 299}


def all_models():
    return sorted(torchvision.models.list_models(module=torchvision.models))


def param_count(name):
    """From the weights' metadata, so nothing has to be built to decide --skip-large."""
    try:
        weights = torchvision.models.get_model_weights(name)
        return int(next(iter(weights)).meta["num_params"])
    except Exception:
        return 0


def first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def run_one(name, args):
    """Returns (status, line) for one architecture; status is PASS, FAIL or FAILED-*."""
    size = IMAGE_SIZE.get(name, 224)
    work = os.path.join(args.out, name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        return _check(name, size, work, args)
    finally:
        if not args.keep:  # the .onnx (and any external-data files) are the big part
            for f in os.listdir(work):
                if not f.endswith(".npy"):
                    os.remove(os.path.join(work, f))


def _check(name, size, work, args):
    onnx_path = os.path.join(work, "model.onnx")
    in_path = os.path.join(work, "in.npy")
    ref_path = os.path.join(work, "logits.npy")
    out_path = os.path.join(work, "lens.npy")

    t0 = time.time()
    torch.manual_seed(seed_for(name))
    try:
        model = torchvision.models.get_model(name, weights=None, **EXTRA_ARGS.get(name, {}))
        make_typical(model, torch.randn(args.calibration_batch, 3, size, size))
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            logits = model(x)
    except Exception as exc:
        return "FAILED-TORCH", "%-20s FAILED-TORCH  %s" % (name, first_line(exc))
    try:
        export_onnx(model, x, onnx_path)
    except Exception as exc:
        return "FAILED-EXPORT", "%-20s FAILED-EXPORT %s" % (name, first_line(exc))
    try:
        logits, fp32_error = float64_reference(model, x, logits)
    except Exception as exc:
        return "FAILED-TORCH", "%-20s FAILED-TORCH  float64: %s" % (name, first_line(exc))
    del model
    np.save(in_path, np.ascontiguousarray(x.numpy(), dtype=np.float32))
    np.save(ref_path, np.ascontiguousarray(logits.numpy(), dtype=np.float32))
    max_logit = float(logits.abs().max())
    torch_s = time.time() - t0
    onnx_mb = sum(os.path.getsize(os.path.join(work, f)) for f in os.listdir(work) if not f.endswith(".npy")) / 1e6
    if args.no_lens:
        return "EXPORTED", "%-20s EXPORTED  max|logit| %9.4g  torch fp32 %8.2g  onnx %8.1f MB  torch %6.1f s" % (
            name, max_logit, fp32_error, onnx_mb, torch_s)

    t1 = time.time()
    try:
        proc = subprocess.run(
            [args.lens, "run", "-m", onnx_path, "-i", in_path, "-o", out_path],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=args.timeout,
        )
    except subprocess.TimeoutExpired:
        return "FAILED-RUN", "%-20s FAILED-RUN    timed out after %d s" % (name, args.timeout)
    lens_s = time.time() - t1
    if proc.returncode != 0:
        tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "exit %d" % proc.returncode
        return "FAILED-RUN", "%-20s FAILED-RUN    %s" % (name, tail[:200])
    try:
        got = np.load(out_path)
    except Exception as exc:
        return "FAILED-RUN", "%-20s FAILED-RUN    cannot read %s: %s" % (name, out_path, first_line(exc))
    if got.shape != tuple(logits.shape):
        return "FAIL", "%-20s FAIL  output shape %s, expected %s" % (name, got.shape, tuple(logits.shape))
    diff = float(np.abs(got.astype(np.float64) - logits.numpy().astype(np.float64)).max())
    rel = diff / max_logit if max_logit > 0 else diff
    status = "PASS" if rel <= TOLERANCE else "FAIL"  # NaN fails too
    return status, "%-20s %-4s  max|logit| %9.4g  max|diff| %9.3g  diff/max %9.3g  torch fp32 %8.2g  lens %7.3f s" % (
        name, status, max_logit, diff, rel, fp32_error, lens_s)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated names or shell patterns (resnet*,vit_b_16)")
    parser.add_argument("--skip", help="comma-separated names or patterns to leave out")
    parser.add_argument("--skip-large", action="store_true", help="skip models over %d parameters" % LARGE_PARAMS)
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "out"), help="work directory (default bench/out)")
    parser.add_argument("--lens", default=os.path.join(ROOT, "build", "lens"), help="lens binary (default build/lens)")
    parser.add_argument("--no-lens", action="store_true", help="only build, export and save the PyTorch reference")
    parser.add_argument("--keep", action="store_true", help="keep each model.onnx after checking")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per lens run")
    parser.add_argument("--calibration-batch", type=int, default=4, help="images used to set BatchNorm statistics")
    parser.add_argument("--list", action="store_true", help="print the architectures and their sizes, then exit")
    args = parser.parse_args()

    names = all_models()
    if args.only:
        patterns = args.only.split(",")
        unknown = [p for p in patterns if not any(fnmatch.fnmatch(n, p) for n in names)]
        if unknown:
            parser.error("no torchvision model matches: %s" % ", ".join(unknown))
        names = [n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)]
    if args.skip:
        names = [n for n in names if not any(fnmatch.fnmatch(n, p) for p in args.skip.split(","))]
    if args.skip_large:
        names = [n for n in names if param_count(n) <= LARGE_PARAMS]
    if args.list:
        for n in names:
            print("%-20s %6.1f M params  %d px" % (n, param_count(n) / 1e6, IMAGE_SIZE.get(n, 224)))
        return 0
    if not args.no_lens and not os.access(args.lens, os.X_OK):
        parser.error("%s is not an executable (build lens, pass --lens, or use --no-lens)" % args.lens)
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    print("torch %s, torchvision %s; tolerance %.0e x max|logit|; %d models" % (
        torch.__version__, torchvision.__version__, TOLERANCE, len(names)), flush=True)
    counts = {}
    for name in names:
        status, line = run_one(name, args)
        counts[status] = counts.get(status, 0) + 1
        print(line, flush=True)
    ok = counts.get("PASS", 0) + counts.get("EXPORTED", 0)
    failed = len(names) - ok
    detail = ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items()) if k not in ("PASS", "EXPORTED"))
    print("%d passed, %d failed%s" % (ok, failed, " (%s)" % detail if detail else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
