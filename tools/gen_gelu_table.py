#!/usr/bin/env python3
"""Coefficients of the piecewise polynomial for GELU's middle path (src/kernels/act_body.h, act_gelu_mid).

q(a) = Phi(-a) = erfc(a / sqrt 2) / 2 for a = |x| in [O / s, (O + 16) / s), in 16 intervals of width 1 / s: on
interval i, a = (O + i + 1/2 + t) / s with t in [-1/2, 1/2], and q = sum_k c[k][i] t^k. (The kernel takes i as
a s - O - 1/2 rounded to an integer, and t = a s - (O + i + 1/2) from one FMA.) Each interval is fitted in double
(numpy least squares on 400 Chebyshev nodes, weighted by 1 / q so the far tail keeps relative precision, then
iteratively reweighted toward equal ripple), the coefficients rounded to float, and the result checked by evaluating
Horner's rule in float on a dense grid against math.erfc. Prints the C table and the measured errors.

Also the polynomial of GELU's small range, |x| < sqrt 2: x Phi(x) = x (1/2 + x R(x^2)) with
R(w) = erf(sqrt(w / 2)) / (2 sqrt w), degree 5 in w on [0, 2], fitted the same way (relative error, on Chebyshev
nodes in w), and checked by evaluating y = x (1/2 + x R(x^2)) in float (FMAs) against 0.5 x (1 + erf(x / sqrt 2)).

Usage: python3 tools/gen_gelu_table.py [s] [O] [degree]   (defaults 4 5 5, the kernel's)
"""
import math
import sys

import numpy as np

S = float(np.float32(float(sys.argv[1]))) if len(sys.argv) > 1 else 4.0
O = int(sys.argv[2]) if len(sys.argv) > 2 else 5
DEG = int(sys.argv[3]) if len(sys.argv) > 3 else 5
N = 16
W = 1.0 / S


def q(a):
    return 0.5 * np.vectorize(math.erfc)(a / math.sqrt(2.0))


def fit_interval(i):
    w = W
    t = 0.5 * np.cos(np.pi * (np.arange(400) + 0.5) / 400)
    f = q((O + i + 0.5 + t) * w)
    weight = 1.0 / f
    V = np.vander(t, DEG + 1, increasing=True)
    c = np.linalg.lstsq(V * weight[:, None], f * weight, rcond=None)[0]
    for _ in range(30):  # Lawson-style reweighting: push the largest relative errors down
        e = np.abs(V @ c - f) / f
        weight = weight * (1.0 + 50.0 * e / e.max())
        c = np.linalg.lstsq(V * weight[:, None], f * weight, rcond=None)[0]
    return c.astype(np.float32)


def check(i, c):
    w = W
    t = np.linspace(-0.5, 0.5, 20001)
    want = q((O + i + 0.5 + t) * w)
    tf = t.astype(np.float32)
    p = np.zeros_like(tf)
    for ck in c[::-1]:  # float Horner (each step rounded once, as an FMA does)
        p = (p.astype(np.float64) * tf + float(ck)).astype(np.float32)
    err = np.abs(p.astype(np.float64) - want)
    return err.max(), (err / want).max()


coefs = [fit_interval(i) for i in range(N)]
worst_abs = worst_rel = 0.0
for i, c in enumerate(coefs):
    ea, er = check(i, c)
    worst_abs, worst_rel = max(worst_abs, ea), max(worst_rel, er)
    print(f"/* interval {i:2d}: a in [{(O + i) * W:.4f}, {(O + i + 1) * W:.4f}): abs {ea:.3g}, rel {er:.3g} */")
print(f"/* s = {S}, O = {O}, degree {DEG}: max abs error {worst_abs:.3g} (2^{math.log2(worst_abs):.1f}), "
      f"max rel error {worst_rel:.3g} */")
print(f"static const float act_gelu_mid_coef[{DEG + 1}][16] = {{")
for k in range(DEG + 1):
    row = ", ".join(f"{float(coefs[i][k]):.9e}f" for i in range(N))
    print(f"    {{{row}}},")
print("};")


# ---- the small range: R(w) for w = x^2 in [0, 2] ----
SMALL_DEG = 5


def R(w):
    s = np.sqrt(np.maximum(w, 1e-300))
    r = 0.5 * np.vectorize(math.erf)(s / math.sqrt(2.0)) / s
    return np.where(w < 1e-12, 1.0 / math.sqrt(2.0 * math.pi), r)


w = 1.0 + np.cos(np.pi * (np.arange(600) + 0.5) / 600)
f = R(w)
weight = 1.0 / f
V = np.vander(w, SMALL_DEG + 1, increasing=True)
c = np.linalg.lstsq(V * weight[:, None], f * weight, rcond=None)[0]
for _ in range(40):
    e = np.abs(V @ c - f) / f
    weight = weight * (1.0 + 50.0 * e / e.max())
    c = np.linalg.lstsq(V * weight[:, None], f * weight, rcond=None)[0]
cs = c.astype(np.float32)
x = np.linspace(-1.41422, 1.41422, 400001).astype(np.float32)
xd = x.astype(np.float64)
x2 = (xd * xd).astype(np.float32)
p = np.full_like(x2, cs[-1])
for ck in cs[-2::-1]:
    p = (p.astype(np.float64) * x2 + float(ck)).astype(np.float32)
y = (xd * (xd * p + 0.5).astype(np.float32)).astype(np.float32)
want = 0.5 * xd * (1.0 + np.vectorize(math.erf)(xd / math.sqrt(2.0)))
nz = np.abs(want) > 1e-30
ulp = 2.0 ** (np.floor(np.log2(np.abs(want[nz]))) - 23)
err = np.abs(y[nz] - want[nz]) / ulp
print(f"/* small range, R of degree {SMALL_DEG}: relative fit error {(np.abs(V @ c - f) / f).max():.3g}; "
      f"y within {err.max():.2f} ulp (at x = {x[nz][err.argmax()]:.6g}) */")
print("R coefficients, w^0 first: " + ", ".join(f"{float(v):.9e}f" for v in cs))
