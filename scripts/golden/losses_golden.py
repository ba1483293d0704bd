"""Golden numbers for tests/autograd/losses.cpp, computed with PyTorch.

Run: /usr/bin/python3 scripts/golden/losses_golden.py
Prints C++ initialisers to paste into the test. Inputs are fixed literals (float32-exact), so the C++ test
reads the same numbers without re-deriving them from a generator.
"""
import torch
import torch.nn.functional as F

torch.set_printoptions(precision=9)


def cpp(name, t):
    values = ", ".join(f"{v:.9g}f" for v in t.detach().reshape(-1).tolist())
    print(f"const std::vector<float> {name} = {{{values}}};")


# Cross-entropy: one row with large logits checks the max shift.
logits = torch.tensor([[1.5, -0.25, 0.75, 2.0, -1.0],
                       [0.0, 0.5, -0.5, 1.0, 0.25],
                       [30.0, 28.5, -4.0, 29.0, 0.0],
                       [-2.0, -1.5, -3.0, -0.5, -2.5]], requires_grad=True)
labels = torch.tensor([3, 1, 1, 4])
for eps in (0.0, 0.1):
    logits.grad = None
    loss = F.cross_entropy(logits, labels, label_smoothing=eps)
    loss.backward()
    tag = "ls" if eps else "plain"
    print(f"// cross_entropy label_smoothing={eps}")
    cpp(f"ce_{tag}_loss", loss)
    cpp(f"ce_{tag}_grad", logits.grad)

# Tempered KL (TRADES / distillation), gradients into both arguments.
student = torch.tensor([[0.5, -1.0, 2.0, 0.25],
                        [3.0, 1.0, -2.0, 0.0],
                        [-0.75, 0.125, 1.5, -1.25]], requires_grad=True)
teacher = torch.tensor([[1.0, 0.0, 1.5, -0.5],
                        [2.0, 2.5, -1.0, 0.5],
                        [0.0, -0.5, 4.0, -3.0]], requires_grad=True)
for temperature in (1.0, 4.0):
    student.grad = None
    teacher.grad = None
    loss = F.kl_div(F.log_softmax(student / temperature, dim=1), F.softmax(teacher / temperature, dim=1),
                    reduction="batchmean")
    loss.backward()
    tag = f"t{int(temperature)}"
    print(f"// kl_div_tempered T={temperature}")
    cpp(f"kl_{tag}_loss", loss)
    cpp(f"kl_{tag}_grad_student", student.grad)
    cpp(f"kl_{tag}_grad_teacher", teacher.grad)
