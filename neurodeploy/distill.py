"""Knowledge distillation from the user's own ANN while the clips train.

Re-trained on the labels alone, a model fine-tuned for a clip method ends below the one the
user brought, so distillation keeps the user's network as the reference: the frozen original
(its BatchNorm folded, eval mode) runs on every training batch and the student learns

    loss = (1 - w) * CE(student, labels)
           + w * tau^2 * KL(softmax(teacher / tau) || softmax(student / tau))
           + a * sum_l mean((h_l - g_l)^2) / mean(g_l^2)

(Hinton et al. 2015; the tau^2 keeps the soft term's gradient scale independent of tau). With
``activations`` a > 0 each clip's output h_l also follows the original's ReLU output g_l at the
same place, normalised per layer so every layer counts alike whatever its scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from neurodeploy.errors import InputError
from neurodeploy.nn import ThresholdClip


@dataclass(frozen=True)
class Distillation:
    temperature: float = 4.0  #: tau: softens both softmaxes so the teacher's ranking counts
    weight: float = 0.7  #: w: share of the soft (teacher) term against the label term
    activations: float = 0.0  #: a: weight of the per-layer activation term (0: logits only)

    def __post_init__(self) -> None:
        if not 0 < self.temperature < math.inf:
            raise InputError(f"distillation temperature must be positive and finite, got "
                             f"{self.temperature}")
        if not 0.0 <= self.weight <= 1.0:
            raise InputError(f"distillation weight must be in [0, 1], got {self.weight}")
        if not 0 <= self.activations < math.inf:
            raise InputError(f"activation distillation weight must be >= 0 and finite, got "
                             f"{self.activations}")


DISTILL = Distillation()  #: the default: logits only


class DistillLoss:
    """``loss(student, x, y)`` for ``train.fit``: the frozen ``teacher`` runs on ``x`` too.

    Activation pairs are the teacher's ``nn.ReLU`` and the student's ``ThresholdClip`` of
    the same module name (``nn.prepare`` swaps modules in place, so names survive). Use it as
    a context manager: leaving it removes the hooks that read the activations, so the
    student can be saved as TorchScript.
    """

    def __init__(self, teacher: nn.Module, student: nn.Module, config: Distillation) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.config = config
        self.pairs: list[str] = []
        self._seen: dict[tuple[str, str], torch.Tensor] = {}
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []
        self._active = False  #: keep activations only inside __call__ (not while evaluating)
        if config.activations > 0:
            clips = {n for n, m in student.named_modules() if isinstance(m, ThresholdClip)}
            relus = {n: m for n, m in teacher.named_modules() if isinstance(m, nn.ReLU)}
            self.pairs = sorted(clips & set(relus))
            if not self.pairs:
                raise InputError("activation distillation found no activation the original "
                                 "and the fine-tuned model share",
                                 hint="Distil the logits only (activations=0)")
            students = dict(student.named_modules())
            for name in self.pairs:
                for side, module in (("teacher", relus[name]), ("student", students[name])):
                    self._hooks.append(module.register_forward_hook(self._keeper(side, name)))

    def __enter__(self) -> DistillLoss:
        return self

    def __exit__(self, *exc: object) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()

    def _keeper(self, side: str, name: str):
        def keep(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            if self._active:
                self._seen[side, name] = output
        return keep

    def __call__(self, student: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = self.config
        self._active = True
        try:
            with torch.no_grad():
                soft = F.log_softmax(self.teacher(x) / c.temperature, dim=1)
            logits = student(x)
        finally:
            self._active = False
        kl = F.kl_div(F.log_softmax(logits / c.temperature, dim=1), soft, log_target=True,
                      reduction="batchmean")
        loss = (1 - c.weight) * F.cross_entropy(logits, y) + c.weight * c.temperature ** 2 * kl
        for name in self.pairs:
            g, h = self._seen.pop(("teacher", name)), self._seen.pop(("student", name))
            loss = loss + c.activations * ((h - g) ** 2).mean() / (g ** 2).mean().clamp_min(1e-8)
        return loss
