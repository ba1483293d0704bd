#!/usr/bin/python3
"""PyTorch side of the attack parity check: FGSM and PGD (Linf, no random start) on the same images as
`ironclad attack --limit N`, with the same conventions, printed as one JSON object.

Run with Debian's python (python3-torch, python3-pil):

    /usr/bin/python3 scripts/golden/attack_parity.py --weights ../shared/models/resnet20-cifar10.safetensors \
        --data /tmp/cifar10-jpg --limit 1000 --eps 0.5/255 --step 0.125/255 --steps 20 \
        [--compare engine-pgd.json engine-fgsm.json]

and compare with

    build/tools/ironclad attack --model resnet20 --weights W --data /tmp/cifar10-jpg --limit 1000 --attack pgd \
        --eps 0.5/255 --step 0.125/255 --steps 20 --random-start off --json engine-pgd.json
    build/tools/ironclad attack --model resnet20 --weights W --data /tmp/cifar10-jpg --limit 1000 --attack fgsm \
        --eps 0.5/255 --json engine-fgsm.json

Conventions shared with the engine (include/ironclad/adversarial/):
  - images: test/<class>/<file> in sorted class order, the first limit/classes files of each class in sorted
    name order, decoded to RGB (PIL here, stb_image in the engine: a few pixels may differ by one level),
    pixel / 255 in float32;
  - the normalisation (mean/std from the weights' metadata) is inside the model: attacks work in [0,1];
  - FGSM: x + eps * sign(grad of the cross-entropy), clipped to [0,1];
  - PGD: `steps` times x' <- min(max(x' + step * sign(grad), x - eps), x + eps), clipped to [0,1], from x itself;
  - an image the model misclassifies clean is its own adversarial example (it is not attacked);
  - robust top-1 = percentage of images still classified correctly after the attack.
With --compare, the per-image adversarial predictions of the engine's --json files are compared with these.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models_golden import CifarResNet  # noqa: E402


def load_safetensors(path):
    """(tensors by name, metadata) of a .safetensors file; the package's reader is not needed for F32."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    metadata = header.pop("__metadata__", {})
    base = 8 + header_len
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} has dtype {entry['dtype']}, expected F32")
        begin, end = entry["data_offsets"]
        values = np.frombuffer(data, dtype="<f4", count=(end - begin) // 4, offset=base + begin)
        tensors[name] = torch.from_numpy(values.copy()).reshape(entry["shape"])
    return tensors, metadata


def fraction(text):
    if "/" in text:
        a, b = text.split("/")
        return float(a) / float(b)
    return float(text)


class Normalized(nn.Module):
    def __init__(self, net, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def load_images(root, limit):
    test = os.path.join(root, "test")
    classes = sorted(os.listdir(test))
    per_class = limit // len(classes)
    images, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted(os.listdir(os.path.join(test, name)))[:per_class]:
            with Image.open(os.path.join(test, name, file)) as im:
                images.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous().float() / 255
    return x, torch.tensor(labels, dtype=torch.long)


def input_gradient(model, x, y):
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(model, x, y, eps):
    return (x + eps * input_gradient(model, x, y).sign()).clamp(0, 1)


def pgd(model, x, y, eps, step, steps):
    adv = x.clone()
    for _ in range(steps):
        adv = adv + step * input_gradient(model, adv, y).sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv


def attack_all(model, x, y, batch, attack):
    clean, adversarial = [], []
    for start in range(0, len(y), batch):
        xb, yb = x[start:start + batch], y[start:start + batch]
        with torch.no_grad():
            pred = model(xb).argmax(1)
        adv = xb.clone()
        hit = pred == yb
        if hit.any():
            adv[hit] = attack(xb[hit], yb[hit])
        with torch.no_grad():
            adversarial.append(model(adv).argmax(1))
        clean.append(pred)
    return torch.cat(clean), torch.cat(adversarial)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--data", required=True, help="folder with test/<class>/*.jpg")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--eps", default="0.5/255")
    ap.add_argument("--step", default="0.125/255")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compare", nargs="*", default=[], help="engine --json files (pgd and/or fgsm) to compare per image")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    tensors, metadata = load_safetensors(a.weights)
    net = CifarResNet(20, metadata.get("shortcut", "A"), 3, 10)
    missing, unexpected = net.load_state_dict(tensors, strict=False)
    if unexpected or any(not m.endswith("num_batches_tracked") for m in missing):
        raise SystemExit(f"{a.weights}: missing {missing}, unexpected {unexpected}")
    mean = [float(v) for v in metadata["mean"].split(",")]
    std = [float(v) for v in metadata["std"].split(",")]
    model = Normalized(net, mean, std).eval()
    for p in model.parameters():
        p.requires_grad_(False)

    x, y = load_images(a.data, a.limit)
    # Python floats become float32 in the tensor arithmetic, as the engine's float eps and step.
    eps, step = fraction(a.eps), fraction(a.step)
    results = {"images": len(y), "weights": a.weights, "mean": mean, "std": std, "torch": torch.__version__}
    predictions = {}
    for name, attack in (("pgd", lambda xb, yb: pgd(model, xb, yb, eps, step, a.steps)),
                         ("fgsm", lambda xb, yb: fgsm(model, xb, yb, eps))):
        clean, adversarial = attack_all(model, x, y, a.batch, attack)
        predictions[name] = adversarial
        results["clean_top1"] = 100.0 * (clean == y).float().mean().item()
        results[name] = {"robust_top1": 100.0 * (adversarial == y).float().mean().item(),
                         "threat_model": {"norm": "linf", "eps": eps, "step": eps if name == "fgsm" else step,
                                          "steps": 1 if name == "fgsm" else a.steps, "random_start": False}}
    for path in a.compare:
        with open(path) as f:
            engine = json.load(f)
        name = engine["attack"]["name"]
        theirs = torch.tensor([im["adversarial"] for im in engine["per_image"]])
        ours = predictions[name]
        results[name]["engine_robust_top1"] = engine["robust_top1"]
        results[name]["engine_clean_top1"] = engine["clean_top1"]
        results[name]["same_adversarial_prediction"] = 100.0 * (theirs == ours).float().mean().item()
        results[name]["robust_top1_difference"] = engine["robust_top1"] - results[name]["robust_top1"]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
