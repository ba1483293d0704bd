#!/usr/bin/env python3
"""Writes the embedded Fashion-MNIST subset in data/fashion-mnist-mini (IDX, gzip).

Class-balanced: the first K records of each class, in record order, from Debian's dataset-fashion-mnist.
    python3 scripts/make_embedded_fmnist.py [--train-per-class 300] [--test-per-class 100]
"""
import argparse
import gzip
import os

SRC = "/usr/share/datasets/fashion-mnist"


def read(name):
    with gzip.open(os.path.join(SRC, name), "rb") as f:
        return f.read()


def subset(images, labels, per_class):
    n = int.from_bytes(labels[4:8], "big")
    taken = {c: 0 for c in range(10)}
    keep = []
    for i in range(n):
        c = labels[8 + i]
        if taken[c] < per_class:
            taken[c] += 1
            keep.append(i)
    img = b"".join(images[16 + 784 * i:16 + 784 * (i + 1)] for i in keep)
    lab = bytes(labels[8 + i] for i in keep)
    k = len(keep)
    img_hdr = (0x803).to_bytes(4, "big") + k.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    lab_hdr = (0x801).to_bytes(4, "big") + k.to_bytes(4, "big")
    return img_hdr + img, lab_hdr + lab


def write(path, data):
    with open(path, "wb") as f:
        f.write(gzip.compress(data, compresslevel=9, mtime=0))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--train-per-class", type=int, default=300)
    ap.add_argument("--test-per-class", type=int, default=100)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "data", "fashion-mnist-mini"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for split, prefix, k in (("train", "train", a.train_per_class), ("test", "t10k", a.test_per_class)):
        img, lab = subset(read(f"{prefix}-images-idx3-ubyte.gz"), read(f"{prefix}-labels-idx1-ubyte.gz"), k)
        write(os.path.join(a.out, f"{prefix}-images-idx3-ubyte.gz"), img)
        write(os.path.join(a.out, f"{prefix}-labels-idx1-ubyte.gz"), lab)


if __name__ == "__main__":
    main()
