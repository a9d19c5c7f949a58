"""Writes localisation_reference.json: reference values for dfr-explain's localisation
metrics (a map against a ground-truth manipulation mask), computed with numpy from the
definitions in Dang et al., "On the Detection of Digital Face Manipulation", CVPR 2020
(Sec. 5, the IINC equation and PBCA), written here from the paper, not from dfr-explain.

Run with numpy (2.x was used):
    python make_localisation_reference.py > localisation_reference.json

Definitions (M_att the map, M_gt the mask, both H x W with values in [0, 1]):
  I = min(M_att, M_gt), U = max(M_att, M_gt) element-wise (the fuzzy intersection and
  union; for binary maps the set ones), |M| the L1 norm, mean(M) the mean over pixels.
  IINC = 1 / (3 - mean(U)) * ( 0                                if M_att = 0 and M_gt = 0
                               1                                if exactly one of them is 0
                               2 - |I|/|M_att| - |I|/|M_gt|     otherwise )
  The factor multiplies every case, so an empty map on a manipulated image scores
  1 / (3 - mean(M_gt)), in [1/3, 1/2].
  PBCA = mean over pixels of [(M_att >= t) == (M_gt >= t)], t = 0.5 (the public code's
  MASK_THRESHOLD, JStehouwer/FFD_CVPR2020 eval.py).
  top-k IoU = |T_k & G| / |T_k | G| with T_k the ceil(k/100 * n) largest map pixels (ties:
  the lower row-major index first) and G = {M_gt >= t}; undefined (null) when G is empty.
"""
import json
import math
import numpy as np

rng = np.random.default_rng(20261202)
H, W = 12, 10


def iinc(att, gt):
    za, zg = not att.any(), not gt.any()
    u = np.maximum(att, gt).astype(np.float64)
    factor = 1.0 / (3.0 - u.mean())
    if za and zg:
        return 0.0
    if za or zg:
        return factor * 1.0
    i = np.minimum(att, gt).astype(np.float64).sum()
    return factor * (2.0 - i / att.astype(np.float64).sum() - i / gt.astype(np.float64).sum())


def pbca(att, gt, t=0.5):
    return float(((att >= t) == (gt >= t)).mean())


def top_k_iou(att, gt, k, t=0.5):
    g = (gt >= t).ravel()
    if not g.any():
        return None
    n = att.size
    m = min(n, max(1, math.ceil(k * n / 100.0 - 1e-9)))
    flat = att.ravel().astype(np.float64)
    order = np.lexsort((np.arange(n), -flat))  # largest first, ties by index
    top = np.zeros(n, bool)
    top[order[:m]] = True
    return float((top & g).sum() / (top | g).sum())


def rect(y0, y1, x0, x1, v=1.0):
    m = np.zeros((H, W), np.float32)
    m[y0:y1, x0:x1] = v
    return m


soft = np.clip(rect(2, 9, 3, 8) * rng.uniform(0.3, 1.0, (H, W)), 0, 1).astype(np.float32)
maps = {
    "random": rng.uniform(0, 1, (H, W)).astype(np.float32),
    "sparse": (rng.uniform(0, 1, (H, W)) * (rng.uniform(0, 1, (H, W)) > 0.7)).astype(np.float32),
    "on_mask": rect(3, 8, 2, 6),
    "ties": np.round(rng.uniform(0, 1, (H, W)) * 3).astype(np.float32) / 3,
    "empty": np.zeros((H, W), np.float32),
    "full": np.ones((H, W), np.float32),
}
masks = {
    "box": rect(3, 8, 2, 6),
    "soft": soft,
    "whole": np.ones((H, W), np.float32),
    "real": np.zeros((H, W), np.float32),
    "corner": rect(0, 2, 0, 3),
}

cases = []
for mn, att in maps.items():
    for kn, gt in masks.items():
        for k in (10.0, 25.0):
            cases.append({
                "map_name": mn, "mask_name": kn, "top_k_percent": k,
                "iinc": iinc(att, gt), "pbca": pbca(att, gt),
                "top_k_iou": top_k_iou(att, gt, k),
            })

out = {
    "height": H, "width": W, "threshold": 0.5,
    "maps": {n: [float(v) for v in m.ravel()] for n, m in maps.items()},
    "masks": {n: [float(v) for v in m.ravel()] for n, m in masks.items()},
    "cases": cases,
}
print(json.dumps(out))
