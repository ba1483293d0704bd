"""Golden values for tests/optim/{sgd,adam}.cpp: three steps of torch.optim on a tiny problem.

Run with /usr/bin/python3 (torch installed); paste the printed arrays into the tests.
Problem (mirrored in the tests): group 0 = [p0] with the configured weight decay and lr;
group 1 = [p1, p2] with weight decay 0 and half the lr. At step t (0-based) every parameter gets
grad = 0.5 * p + c_t with c_t[k] = ((7 * k + 3 * t) % 11 - 5) * 0.1, except p2 at step 1 (no gradient).
"""
import torch

torch.set_num_threads(1)


def initial():
    return [torch.tensor([[0.5, -1.0, 0.25], [1.5, -0.75, 2.0]]),
            torch.tensor([0.1, -0.2, 0.3]),
            torch.tensor([1.0, -1.0])]


def offsets(n, t):
    return torch.tensor([float((7 * k + 3 * t) % 11 - 5) for k in range(n)]) * 0.1


def run(make, lr, wd, steps=3):
    ps = [torch.nn.Parameter(p) for p in initial()]
    opt = make([{"params": [ps[0]], "weight_decay": wd, "lr": lr},
                {"params": ps[1:], "weight_decay": 0.0, "lr": lr * 0.5}])
    for t in range(steps):
        for i, p in enumerate(ps):
            if i == 2 and t == 1:
                p.grad = None
            else:
                p.grad = (p.detach() * 0.5 + offsets(p.numel(), t).view(p.shape))
        opt.step()
    return [v for p in ps for v in p.detach().flatten().tolist()]


def show(name, values):
    print(f"// {name}")
    print("{" + ", ".join(f"{v:.9g}f" for v in values) + "}")


show("sgd plain lr=0.1 wd=0.01",
     run(lambda g: torch.optim.SGD(g, lr=0.1), 0.1, 0.01))
show("sgd momentum=0.9 dampening=0.1 lr=0.1 wd=0.01",
     run(lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, dampening=0.1), 0.1, 0.01))
show("sgd nesterov momentum=0.9 lr=0.1 wd=0.01",
     run(lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True), 0.1, 0.01))
show("adam lr=0.01 betas=(0.8,0.95) eps=1e-3 wd=0.1",
     run(lambda g: torch.optim.Adam(g, lr=0.01, betas=(0.8, 0.95), eps=1e-3), 0.01, 0.1))
show("adamw lr=0.01 betas=(0.9,0.999) eps=1e-8 wd=0.1",
     run(lambda g: torch.optim.AdamW(g, lr=0.01), 0.01, 0.1))
