"""The quick study's baseline recipe in PyTorch/torchvision, for `cargo xtask bench learning`.

An independent implementation of what `dfr train` does with `experiments/quick.toml`:
random-init torchvision EfficientNet-B0 with a fresh Linear(1280, 2) head (PyTorch's default
init, U(±1/√1280)), dropout and stochastic depth as given, BatchNorm momentum 0.1, ImageNet
normalisation inside the model, class-weighted cross-entropy (w_c = N / (2·N_c)), Adam,
shuffled batches (the last one kept), and the training transforms of the study:
RandomResizedCrop(size, scale) → RandomHorizontalFlip → ColorJitter(0.1, 0.1, 0.1, 0.05) →
RandomRotation(10) (torchvision's default NEAREST, or --rotation bilinear). `--pipeline tensor`
(default) crops and resizes the PIL image, then flips, jitters and rotates the float tensor, as
dfr-data does; `--pipeline pil` runs every transform on PIL images (uint8 after each colour op).
After every epoch: validation macro-F1 at threshold 0.5; the best epoch's weights give the
test ROC-AUC.

Usage:
    python pt_learning.py --data ROOT --seeds 1,2,3 --epochs 8 --out result.json
Prints nothing but progress on stderr; writes
    {"seeds": [...], "runs": [{"seed", "train_loss": [...], "val_macro_f1": [...],
      "best_val_macro_f1", "best_epoch", "test_auc"}]}
"""
import argparse
import copy
import glob
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode

REAL = {"ffhq", "celeba"}
FAKE = {"faceapp", "stargan", "pggan_v1", "pggan_v2", "stylegan_celeba", "stylegan_ffhq"}


def split_files(root, split):
    items = []
    for source in sorted(os.listdir(root)):
        if source not in REAL | FAKE:
            continue
        label = 0 if source in REAL else 1
        for path in sorted(glob.glob(os.path.join(root, source, split, "*.png"))):
            items.append((path, label))
    if not items:
        sys.exit(f"no images in {root}/*/{split}")
    return items


class Files(torch.utils.data.Dataset):
    def __init__(self, items, transform):
        self.items, self.transform = items, transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, label = self.items[i]
        with Image.open(path) as im:
            img = im.convert("RGB")
        return self.transform(img), label


class Normalised(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def macro_f1(labels, preds):
    f1 = []
    for c in (0, 1):
        tp = np.sum((preds == c) & (labels == c))
        fp = np.sum((preds == c) & (labels != c))
        fn = np.sum((preds != c) & (labels == c))
        f1.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1))


def roc_auc(labels, scores):
    # Mann-Whitney U with ties counted half.
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def evaluate(model, loader):
    model.eval()
    labels, scores = [], []
    with torch.no_grad():
        for x, y in loader:
            p = torch.softmax(model(x), dim=1)[:, 1]
            labels.append(y.numpy())
            scores.append(p.numpy())
    labels, scores = np.concatenate(labels), np.concatenate(scores)
    return labels, scores


def run(args, seed):
    torch.manual_seed(seed)
    np.random.seed(seed)
    rotation = {"nearest": InterpolationMode.NEAREST, "bilinear": InterpolationMode.BILINEAR}[args.rotation]
    if args.no_augment:
        train_tf = transforms.Compose([transforms.Resize((args.size, args.size)), transforms.ToTensor()])
    elif args.pipeline == "pil":
        # Every transform on PIL images (uint8 after each colour op), as the study's notebook.
        train_tf = transforms.Compose([
            transforms.RandomResizedCrop(args.size, scale=(0.9, 1.0)),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(0.1, 0.1, 0.1, 0.05),
            transforms.RandomRotation(10, interpolation=rotation),
            transforms.ToTensor(),
        ])
    else:
        # dfr-data's semantics: crop + resize on uint8 (PIL), then flip, jitter and rotation on
        # float tensors (torchvision's tensor ops, no re-quantisation).
        train_tf = transforms.Compose([
            transforms.RandomResizedCrop(args.size, scale=(0.9, 1.0)),
            transforms.ToTensor(),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(0.1, 0.1, 0.1, 0.05),
            transforms.RandomRotation(10, interpolation=rotation),
        ])
    eval_tf = transforms.Compose([transforms.Resize((args.size, args.size)), transforms.ToTensor()])
    train_items = split_files(args.data, "train")
    n = len(train_items)
    counts = np.bincount([l for _, l in train_items], minlength=2)
    weights = torch.tensor(n / (2.0 * counts), dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    train_loader = torch.utils.data.DataLoader(
        Files(train_items, train_tf), batch_size=args.batch, shuffle=True, generator=g)
    val_loader = torch.utils.data.DataLoader(Files(split_files(args.data, "validation"), eval_tf), batch_size=64)
    test_loader = torch.utils.data.DataLoader(Files(split_files(args.data, "test"), eval_tf), batch_size=64)

    net = torchvision.models.efficientnet_b0(
        weights=None, dropout=args.dropout, stochastic_depth_prob=args.stochastic_depth)
    net.classifier[1] = nn.Linear(1280, 2)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = args.bn_momentum
    model = Normalised(net)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    record = {"seed": seed, "train_loss": [], "val_macro_f1": []}
    best, best_state, best_epoch = -1.0, None, None
    for epoch in range(args.epochs):
        model.train()
        total, seen = 0.0, 0
        for x, y in train_loader:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
            seen += len(y)
        labels, scores = evaluate(model, val_loader)
        f1 = macro_f1(labels, (scores >= 0.5).astype(int))
        record["train_loss"].append(total / seen)
        record["val_macro_f1"].append(f1)
        if f1 > best:
            best, best_state, best_epoch = f1, copy.deepcopy(model.state_dict()), epoch
        print(f"seed {seed} epoch {epoch}: train loss {total / seen:.4f} val macro-F1 {f1:.3f}", file=sys.stderr)
    model.load_state_dict(best_state)
    labels, scores = evaluate(model, test_loader)
    record.update(best_val_macro_f1=best, best_epoch=best_epoch, test_auc=roc_auc(labels, scores))
    return record


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--seeds", required=True, help="comma-separated")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--stochastic-depth", type=float, default=0.2)
    p.add_argument("--bn-momentum", type=float, default=0.1)
    p.add_argument("--rotation", choices=["nearest", "bilinear"], default="nearest")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--pipeline", choices=["tensor", "pil"], default="tensor",
                   help="tensor: colour and rotation on float tensors, as dfr-data; pil: all on PIL images")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    result = {"implementation": f"torch {torch.__version__}, torchvision {torchvision.__version__}",
              "rotation": args.rotation, "pipeline": args.pipeline, "seeds": seeds, "runs": [run(args, s) for s in seeds]}
    with open(args.out + ".tmp", "w") as f:
        json.dump(result, f)
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
