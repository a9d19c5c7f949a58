"""torchvision's side of `cargo xtask bench augment`: statistics of what the study's training
transforms hand the model, over many draws on the same source images.

The draws are exactly those of `transforms.Compose([RandomResizedCrop(size, scale=(0.9, 1)),
RandomHorizontalFlip(), ColorJitter(0.1, 0.1, 0.1, 0.05), RandomRotation(10)])`: each
transform's own `get_params` (or coin) in the same order on the global RNG, then the same
functional op, so the drawn parameters can be recorded. `--pipeline tensor` (default, dfr-data's
semantics) converts to a float tensor after the crop; `--pipeline pil` keeps PIL images to the
end (uint8 after every colour op, as the study's notebook).

Usage: python pt_augment.py [--pipeline tensor|pil] --size 64 --draws 200 --rotation nearest --out stats.json FILE...
"""
import argparse
import json
import math
import os

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as F
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode

BINS = 16


def draw(img, size, rotation, pipeline):
    top, left, h, w = transforms.RandomResizedCrop.get_params(img, (0.9, 1.0), (3 / 4, 4 / 3))
    out = F.resized_crop(img, top, left, h, w, [size, size], InterpolationMode.BILINEAR, antialias=True)
    if pipeline == "tensor":
        out = F.to_tensor(out)
    flip = bool(torch.rand(1) < 0.5)
    if flip:
        out = F.hflip(out)
    order, b, c, s, hue = transforms.ColorJitter.get_params((0.9, 1.1), (0.9, 1.1), (0.9, 1.1), (-0.05, 0.05))
    for i in order.tolist():
        out = [F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue][i](out, [b, c, s, hue][i])
    angle = transforms.RandomRotation.get_params([-10.0, 10.0])
    out = F.rotate(out, angle, rotation, fill=0)
    x = (out if pipeline == "tensor" else F.to_tensor(out)).numpy().astype(np.float64)
    params = {"area": w * h / (img.width * img.height), "ratio": w / h, "flip": float(flip),
              "brightness": b, "contrast": c, "saturation": s, "hue": hue, "angle": angle}
    return x, params


def mean_sd(v):
    v = np.asarray(v, dtype=np.float64)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def pearson(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.corrcoef(a, b)[0, 1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--draws", type=int, required=True)
    p.add_argument("--rotation", choices=["nearest", "bilinear"], default="nearest")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pipeline", choices=["tensor", "pil"], default="tensor",
                   help="tensor: flip, jitter and rotation on float tensors, as dfr-data; pil: on PIL images")
    p.add_argument("--out", required=True)
    p.add_argument("files", nargs="+")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    rotation = {"nearest": InterpolationMode.NEAREST, "bilinear": InterpolationMode.BILINEAR}[a.rotation]
    sources = []
    for f in a.files:
        with Image.open(f) as im:
            sources.append(im.convert("RGB"))
    chan_means = [[], [], []]
    sq = np.zeros(3)
    hist = np.zeros((3, BINS))
    fill, pixels = 0, 0
    hf = []
    params = {}
    angles = np.zeros((a.draws, len(sources)))
    # Epoch-major like a loader: every image once per "epoch".
    for e in range(a.draws):
        for i, img in enumerate(sources):
            x, prm = draw(img, a.size, rotation, a.pipeline)
            for c in range(3):
                chan_means[c].append(x[c].mean())
                sq[c] += (x[c] ** 2).sum()
                hist[c] += np.histogram(np.clip(x[c], 0, 1), bins=BINS, range=(0, 1))[0]
            fill += int(np.all(x == 0, axis=0).sum())
            pixels += x.shape[1] * x.shape[2]
            hf.append(float(((x[:, :, 1:] - x[:, :, :-1]) ** 2).mean()))
            for k, v in prm.items():
                params.setdefault(k, []).append(v)
            angles[e, i] = prm["angle"]
    n_pix = pixels
    mean = [float(np.sum(m) * (a.size * a.size) / n_pix) for m in chan_means]
    sd = [float(math.sqrt(max(sq[c] / n_pix - mean[c] ** 2, 0.0))) for c in range(3)]
    out = {
        "implementation": f"torch {torch.__version__}, torchvision {torchvision.__version__}",
        "pipeline": a.pipeline, "images": len(sources), "draws": a.draws, "size": a.size,
        "channel_mean": [mean_sd(m) for m in chan_means],
        "pixel_sd": sd,
        "histogram": (hist / hist.sum(axis=1, keepdims=True)).tolist(),
        "fill_fraction": fill / n_pix,
        "neighbour_difference_energy": mean_sd(hf),
        "params": {k: mean_sd(v) for k, v in params.items()},
        "independence": {
            "angle_r_within_epoch": pearson(angles[:, :-1].ravel(), angles[:, 1:].ravel()) if len(sources) > 1 else 0.0,
            "angle_r_across_epochs": pearson(angles[:-1].ravel(), angles[1:].ravel()),
        },
    }
    with open(a.out + ".tmp", "w") as f:
        json.dump(out, f)
    os.replace(a.out + ".tmp", a.out)


if __name__ == "__main__":
    main()
