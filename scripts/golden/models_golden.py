"""Golden outputs of the CIFAR model zoo for tests/models/*.cpp, from PyTorch reference definitions.

Run: /usr/bin/python3 scripts/golden/models_golden.py
Writes one JSON file per (architecture, input) to tests/golden/models/.

The reference definitions below follow the shared spec (reference-rrelu.md, section 4): chenyaofo/pytorch-cifar-models
for the ResNets (option B), VGGs, MobileNetV2 and ShuffleNetV2, and akamaster/pytorch_resnet_cifar10 for
ResNet option A, each with one ReLU module per use (as the RReLU repository's copies do), so that hooks see
every activation once. ReLUs have no parameters, so the state_dicts equal the upstream ones.

Weights are not stored. Tensor `name` of the state_dict is g = golden_input(shape, fnv1a32(name)) (the
generator of ops_golden.py, values in [-1, 1)) mapped by its role:
  conv / linear weight  g * sqrt(6 / fan_in)      (kaiming-uniform variance, one rounding from double)
  1-D weight (BN gamma) 1 + g / 4,   running_var 1 + g / 4,   bias and running_mean g / 8  (exact products)
The input batch is golden_input((2, C, H, W), 1). Each file records, for eval mode:
  state_dict: names and shapes (num_batches_tracked excluded), in order;
  params, macs: per image, MACs = output elements * C_in/groups * K * K per conv and in * out per linear;
  layers: every Conv2d / BatchNorm2d / ReLU / ReLU6 / MaxPool2d / Dropout / Linear call for a [1, C, H, W]
          input, in call order: name, type, output shape, parameters, MACs;
  relus: the ReLU / ReLU6 module names in call order;
  logits of the batch, and a few activations (module outputs): shape, mean, mean of |x|, and every
  `stride`-th element (at most 256 of them).
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ops_golden import golden_input  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "models")
LEAF_TYPES = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.Dropout, nn.Linear)
SAMPLES = 256


# ----------------------------------------------------------------------------------------------------------
# Reference definitions
# ----------------------------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, shortcut):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        self.pad = 0
        if stride != 1 or cin != cout:
            if shortcut == "B":
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            else:
                self.pad = (cout - cin) // 2
        self.stride = stride
        self.relu2 = nn.ReLU()

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        if self.downsample is not None:
            sc = self.downsample(x)
        elif self.pad or self.stride != 1:
            sc = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
        else:
            sc = x
        return self.relu2(out + sc)


class CifarResNet(nn.Module):
    def __init__(self, depth, shortcut, in_ch, num_classes):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        c = 16
        for s, (cout, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(c, cout, stride if j == 0 else 1, shortcut))
                c = cout
            setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = "linear" if shortcut == "A" else "fc"
        setattr(self, self.head, nn.Linear(64, num_classes))

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return getattr(self, self.head)(torch.flatten(self.avgpool(x), 1))


VGG_CFG = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """chenyaofo's VGG; a pool meeting an odd size pads 1 (the engine's rule for 28x28 inputs)."""

    def __init__(self, depth, in_ch, num_classes, size):
        super().__init__()
        layers, c = [], in_ch
        for v in VGG_CFG[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2, padding=size % 2))
                size = (size + 2 * (size % 2) - 2) // 2 + 1
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
                c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(512 * size * size, 512), nn.ReLU(), nn.Dropout(),
                                        nn.Linear(512, 512), nn.ReLU(), nn.Dropout(), nn.Linear(512, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def conv_bn_relu6(cin, cout, k=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6())


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = int(round(cin * t))
        self.use_res = stride == 1 and cin == cout
        layers = [conv_bn_relu6(cin, hidden, 1)] if t != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    SETTING = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
               [6, 320, 1, 1]]

    def __init__(self, width, in_ch, num_classes):
        super().__init__()
        c = make_divisible(32 * width)
        last = make_divisible(1280 * max(1.0, width))
        feats = [conv_bn_relu6(in_ch, c, 3, 1)]
        for t, ch, n, s in self.SETTING:
            cout = make_divisible(ch * width)
            for i in range(n):
                feats.append(InvertedResidual(c, cout, s if i == 0 else 1, t))
                c = cout
        feats.append(conv_bn_relu6(c, last, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).reshape(x.shape[0], -1)
        return self.classifier(x)


def channel_shuffle(x, groups):
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, inp, oup, stride):
        super().__init__()
        self.stride = stride
        half = oup // 2
        if stride > 1:
            self.branch1 = nn.Sequential(nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
                                         nn.BatchNorm2d(inp), nn.Conv2d(inp, half, 1, 1, 0, bias=False),
                                         nn.BatchNorm2d(half), nn.ReLU())
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(inp if stride > 1 else half, half, 1, 1, 0, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
            nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, 1, 0, bias=False), nn.BatchNorm2d(half), nn.ReLU())

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, in_ch, num_classes, widths=(24, 176, 352, 704, 1024), repeats=(4, 8, 4)):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_ch, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                   nn.ReLU())
        c = widths[0]
        for s, (n, cout) in enumerate(zip(repeats, widths[1:4])):
            units = [ShuffleUnit(c, cout, 2)] + [ShuffleUnit(cout, cout, 1) for _ in range(n - 1)]
            setattr(self, f"stage{s + 2}", nn.Sequential(*units))
            c = cout
        self.conv5 = nn.Sequential(nn.Conv2d(c, widths[4], 1, 1, 0, bias=False), nn.BatchNorm2d(widths[4]),
                                   nn.ReLU())
        self.fc = nn.Linear(widths[4], num_classes)

    def forward(self, x):
        x = self.conv5(self.stage4(self.stage3(self.stage2(self.conv1(x)))))
        return self.fc(x.mean([2, 3]))


# ----------------------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------------------

def build(arch, shortcut, in_ch, size, num_classes=10):
    if arch.startswith("resnet"):
        return CifarResNet(int(arch[6:]), shortcut, in_ch, num_classes)
    if arch.startswith("vgg"):
        return VGG(int(arch[3:5]), in_ch, num_classes, size)
    if arch.startswith("mobilenetv2_x"):
        return MobileNetV2(float(arch[len("mobilenetv2_x"):].replace("_", ".")), in_ch, num_classes)
    if arch == "shufflenetv2_x1_5":
        return ShuffleNetV2(in_ch, num_classes)
    raise ValueError(arch)


# Module outputs recorded besides the logits: an early activation, a block, a later block, the last activation.
PROBES = {
    "resnet20": ["relu", "layer1.0.relu1", "layer2.0", "layer3.2.relu2"],
    "resnet32": ["relu", "layer2.0", "layer3.4.relu2"],
    "resnet44": ["relu", "layer2.0", "layer3.6.relu2"],
    "resnet56": ["relu", "layer2.0", "layer3.8.relu2"],
    "vgg11_bn": ["features.2", "features.10", "features.27", "classifier.4"],
    "vgg13_bn": ["features.2", "features.13", "classifier.4"],
    "vgg16_bn": ["features.2", "features.23", "classifier.4"],
    "vgg19_bn": ["features.2", "features.26", "classifier.4"],
    "mobilenetv2_x0_5": ["features.0.2", "features.2", "features.3.conv.1.2", "features.10", "features.18.2"],
    "mobilenetv2_x0_75": ["features.0.2", "features.3", "features.18.2"],
    "shufflenetv2_x1_5": ["conv1.2", "stage2.0", "stage2.1", "stage3.3.branch2.2", "conv5.2"],
}
CIFAR, FMNIST = (3, 32), (1, 28)
# (architecture, ResNet shortcut, inputs). The deeper VGGs pool 28x28 inputs with vgg11_bn's code, and building
# them dominates the tests' time, so they are checked at 32x32 only.
CASES = [(f"resnet{d}", "B", (CIFAR, FMNIST)) for d in (20, 32, 44, 56)] + [("resnet20", "A", (CIFAR, FMNIST))] + \
        [("vgg11_bn", None, (CIFAR, FMNIST))] + [(f"vgg{d}_bn", None, (CIFAR,)) for d in (13, 16, 19)] + \
        [(name, None, (CIFAR, FMNIST)) for name in ("mobilenetv2_x0_5", "mobilenetv2_x0_75", "shufflenetv2_x1_5")]


def fnv1a32(text):
    h = 2166136261
    for byte in text.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def golden_weights(model):
    state = {}
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            state[name] = t
            continue
        g = golden_input(tuple(t.shape), fnv1a32(name)).double()
        if t.dim() >= 2:
            v = g * math.sqrt(6.0 / (t.numel() // t.shape[0]))
        elif name.endswith("running_var") or name.endswith(".weight"):
            v = 1.0 + g / 4
        else:
            v = g / 8
        state[name] = v.float()
    model.load_state_dict(state)


def floats(t):
    return [float(f"{v:.9g}") for v in t.detach().reshape(-1).tolist()]


def layer_table(model, in_ch, size):
    rows, hooks = [], []
    for name, m in model.named_modules():
        if isinstance(m, LEAF_TYPES):
            def hook(m, inp, out, name=name):
                macs = 0
                if isinstance(m, nn.Conv2d):
                    macs = out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
                elif isinstance(m, nn.Linear):
                    macs = out.numel() * m.in_features
                rows.append([name, type(m).__name__, list(out.shape), sum(p.numel() for p in m.parameters()), macs])
            hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model(torch.zeros(1, in_ch, size, size))
    for h in hooks:
        h.remove()
    return rows


def probe(model, names, x):
    taken, hooks = {}, []
    modules = dict(model.named_modules())
    for name in names:
        hooks.append(modules[name].register_forward_hook(lambda m, i, o, name=name: taken.__setitem__(name, o.clone())))
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    activations = []
    for name in names:
        t = taken[name].double()
        stride = max(1, t.numel() // SAMPLES)
        activations.append({"name": name, "shape": list(t.shape), "mean": float(t.mean()),
                            "mean_abs": float(t.abs().mean()), "stride": stride,
                            "samples": floats(t.reshape(-1)[::stride][:SAMPLES])})
    return logits, activations


def case(arch, shortcut, in_ch, size):
    model = build(arch, shortcut, in_ch, size)
    golden_weights(model)
    model.eval()
    layers = layer_table(model, in_ch, size)
    logits, activations = probe(model, PROBES[arch], golden_input((2, in_ch, size, size), 1))
    relus = [row[0] for row in layers if row[1] in ("ReLU", "ReLU6")]
    assert len(relus) == len(set(relus)), "a ReLU module is called twice"
    return {
        "model": arch, "shortcut": shortcut or "", "in_channels": in_ch, "input_size": size, "num_classes": 10,
        "batch": 2,
        "params": sum(p.numel() for p in model.parameters()),
        "macs": sum(row[4] for row in layers),
        "state_dict": [[k, list(v.shape)] for k, v in model.state_dict().items()
                       if not k.endswith("num_batches_tracked")],
        "relus": relus,
        "layers": layers,
        "logits": floats(logits),
        "activations": activations,
    }


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for arch, shortcut, inputs in CASES:
        for in_ch, size in inputs:
            data = case(arch, shortcut, in_ch, size)
            data["generator"] = f"scripts/golden/models_golden.py (PyTorch {torch.__version__})"
            tag = f"{arch}{'_' + shortcut.lower() if shortcut else ''}_{in_ch}x{size}"
            with open(os.path.join(OUT, tag + ".json"), "w") as f:
                json.dump(data, f, separators=(",", ":"))
                f.write("\n")
            print(tag, data["params"], data["macs"], len(data["relus"]))


if __name__ == "__main__":
    main()
