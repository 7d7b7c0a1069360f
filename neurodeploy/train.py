"""A small, honest training loop, and fine-tuning a trained model for a conversion method.

``fit`` is plain supervised training (Adam or SGD with momentum, cosine or one-cycle
schedule, one progress bar over all epochs showing the loss and the held-out accuracy after
every epoch); the examples train with it and ``finetune`` uses it. ``finetune`` loads any model
file the frontend reads, rebuilds it as a trainable module (BatchNorm folded), swaps its
activations for the method's learnable clip (``neurodeploy.nn.prepare``) with as many levels
as the deployment window has steps, trains it distilled from the model as loaded
(``neurodeploy.distill``), and returns the model to save as TorchScript, which
``neurodeploy compile`` loads with the learned thresholds.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np
import torch
from torch import nn

from neurodeploy.distill import DISTILL, Distillation, DistillLoss
from neurodeploy.errors import InputError, whole_number
from neurodeploy.fileio import atomic_write
from neurodeploy.progress import counter

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "one-cycle")
HELD_OUT = 5000  #: training images kept aside to report accuracy while fine-tuning
INIT_SAMPLES = 512  #: training images that set the clips' initial thresholds
DEFAULT_LEVELS = 4  #: clip levels when neither the levels nor the deployment window is given

#: (model, inputs, labels) -> the batch's loss to minimise
Loss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def supervised(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x), y)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    lr: float = 1e-3
    batch: int = 128
    optimizer: str = "adam"
    schedule: str = "cosine"  #: cosine decay; "one-cycle" warms up first (training from scratch)
    weight_decay: float = 0.0
    flip: bool = False  #: mirror half of each batch horizontally (clothing images)
    seed: int = 0
    show_progress: bool = True

    def __post_init__(self) -> None:
        whole_number(self.epochs, "epochs")
        if not 0 < self.lr < math.inf:
            raise InputError(f"lr must be positive and finite, got {self.lr}")
        whole_number(self.batch, "batch")
        whole_number(self.seed, "seed", least=0)
        for what, value, known in (("optimizer", self.optimizer, OPTIMIZERS),
                                   ("schedule", self.schedule, SCHEDULES)):
            if value not in known:
                raise InputError(f"unknown {what} '{value}'",
                                 hint=f"Use one of: {', '.join(known)}")


@dataclass(frozen=True)
class Epoch:
    epoch: int
    loss: float  #: mean training loss
    accuracy: float  #: held-out accuracy after the epoch
    seconds: float  #: since training started
    cpu_seconds: float  #: this process's CPU time since training started (load-independent)


@dataclass
class History:
    epochs: list[Epoch] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.epochs[-1].seconds if self.epochs else 0.0

    @property
    def cpu_seconds(self) -> float:
        return self.epochs[-1].cpu_seconds if self.epochs else 0.0


def fit(model: nn.Module, train_set: tuple[np.ndarray, np.ndarray],
        held_out: tuple[np.ndarray, np.ndarray], config: TrainConfig,
        log: Callable[[str], None] = print, loss: Loss = supervised) -> History:
    """Train ``model`` in place on ``loss``; ``log`` gets one line per epoch."""
    torch.manual_seed(config.seed)
    inputs, labels = torch.as_tensor(train_set[0]), torch.as_tensor(train_set[1])
    options = {"lr": config.lr, "weight_decay": config.weight_decay}
    optimizer = (torch.optim.SGD(model.parameters(), momentum=0.9, **options)
                 if config.optimizer == "sgd" else torch.optim.Adam(model.parameters(), **options))
    steps = config.epochs * -(-len(inputs) // config.batch)
    schedule = (torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                                    total_steps=steps)
                if config.schedule == "one-cycle"
                else torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps))
    history = History()
    start, cpu = time.perf_counter(), time.process_time()
    held = ""
    with counter(steps, "training", config.show_progress) as bar:
        for epoch in range(1, config.epochs + 1):
            model.train()
            total = 0.0
            for index in torch.randperm(len(inputs)).split(config.batch):
                xb = inputs[index]
                if config.flip:
                    mirror = torch.rand(len(xb)) < 0.5
                    xb = torch.where(mirror[:, None, None, None], xb.flip(3), xb)
                optimizer.zero_grad()
                value = loss(model, xb, labels[index])
                value.backward()
                try:
                    optimizer.step()
                except RuntimeError as err:  # a step beyond float32 (lr 1e38) is no step
                    if "overflow" not in str(err):
                        raise
                    _diverged(epoch)
                schedule.step()
                total += value.item() * len(index)
                bar.update()
                bar.set_postfix_str(f"epoch {epoch}/{config.epochs} loss {value.item():.3f}"
                                    f"{held}", refresh=False)
            # a diverged model is refused, not saved: its NaN weights would only fail later
            if not math.isfinite(total) or not all(bool(torch.isfinite(p).all())
                                                   for p in model.parameters()):
                _diverged(epoch)
            result = Epoch(epoch, total / len(inputs), accuracy(model, *held_out),
                           time.perf_counter() - start, time.process_time() - cpu)
            history.epochs.append(result)
            held = f" held-out {100 * result.accuracy:.2f}%"
            log(f"epoch {epoch:2d}  train loss {result.loss:.4f}  held-out accuracy "
                f"{100 * result.accuracy:.2f}%  ({result.seconds:.0f} s)")
    return history


def _diverged(epoch: int) -> NoReturn:
    raise InputError(f"training diverged in epoch {epoch}: the loss or the weights are no "
                     "longer finite", hint="Lower the learning rate (lr, --lr)")


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 1000) -> float:
    """Top-1 accuracy in eval mode (BatchNorm running statistics, no Dropout)."""
    model.eval()
    hits = sum(int((model(torch.as_tensor(x[i:i + batch])).argmax(1).numpy()
                    == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    return hits / len(x)


@dataclass
class FinetuneResult:
    model: nn.Module  #: eval mode, activations are neurodeploy.nn.ThresholdClip
    input_shape: tuple[int, ...]
    history: History
    test_accuracy: float  #: the fine-tuned float ANN on ``tested_on``
    start_accuracy: float  #: the model as loaded (the user's ANN), on ``tested_on``
    levels: int  #: the clips' quantization levels
    start_held_out: float  #: the model as loaded, on the held-out training images
    #: "the test split" of a named dataset; an .npz file has none, so its held-out images
    tested_on: str = "the test split"


def clip_levels(levels: int | None, timesteps: int | None) -> int:
    """The clips' levels: as given; else the deployment window T (a neuron sends at most T
    single spikes per window, so an ANN trained with T levels is the one it can reproduce);
    else ``DEFAULT_LEVELS``."""
    given = {name: whole_number(value, name) for name, value in
             (("levels", levels), ("timesteps", timesteps)) if value is not None}
    return given.get("levels", given.get("timesteps", DEFAULT_LEVELS))


def finetune(model: str | Path, *, method: str, dataset: str, levels: int | None = None,
             timesteps: int | None = None, config: TrainConfig | None = None,
             distill: Distillation | None = DISTILL, arch: str | None = None,
             trust_pickle: bool = False, input_shape: tuple[int, ...] | None = None,
             log: Callable[[str], None] = print) -> FinetuneResult:
    """Fine-tune a trained model for ``method`` (qcfs, ecl, dual_phase) on ``dataset``.

    The clips get ``clip_levels(levels, timesteps)`` levels. With ``distill`` (the default)
    the model as loaded, frozen, is the teacher (``neurodeploy.distill``); None trains on
    the labels alone. The last ``HELD_OUT`` training images (a tenth for small sets, at least
    one) are held out to report accuracy per epoch; the test split is only measured at the end.
    """
    from neurodeploy.data import DATASETS, check_labels, load_dataset
    from neurodeploy.frontend import load_model
    from neurodeploy.nn import from_ann, prepare

    config = config or TrainConfig()
    chosen = clip_levels(levels, timesteps)
    x, y = load_dataset(dataset, split="train")
    if y is None:
        raise InputError(f"{dataset}: fine-tuning needs labels (an .npz file with 'y')")
    if len(x) < 2:
        raise InputError(f"{dataset}: fine-tuning needs at least 2 samples (one is held out), "
                         f"got {len(x)}")
    ann = load_model(model, arch=arch, trust_pickle=trust_pickle,
                     input_shape=input_shape or tuple(x.shape[1:]),
                     shape_of=None if input_shape else f"the {dataset} images (--dataset)")
    if tuple(x.shape[1:]) != ann.input_shape:
        raise InputError(f"{dataset} images have shape {tuple(x.shape[1:])}, the model expects "
                         f"{ann.input_shape}")
    held = max(1, min(HELD_OUT, len(x) // 10))
    held_out = (x[-held:], y[-held:])
    # a file is one split: measured on its own training images, "test" accuracy was a lie
    split = dataset in DATASETS
    test, tested_on = ((load_dataset(dataset, split="test"), "the test split") if split else
                       (held_out, f"the {held} held-out images of {dataset}"))
    classes = int(np.prod(ann.shapes()[ann.output]))
    for labels in (y, test[1]):
        check_labels(labels, classes, dataset)
    torch.manual_seed(config.seed)
    module = from_ann(ann)
    start_held_out = accuracy(module, *held_out)
    start_accuracy = accuracy(module, *test) if split else start_held_out
    log(f"original model: accuracy {100 * start_accuracy:.2f}% on {tested_on}, held-out "
        f"{100 * start_held_out:.2f}%; clips with {chosen} levels"
        + (", distilled from it" if distill else ""))
    init = np.random.default_rng(config.seed).permutation(len(x) - held)[:INIT_SAMPLES]
    prepared = prepare(module, method, chosen, calib=x[np.sort(init)])
    with (nullcontext(supervised) if distill is None
          else DistillLoss(module, prepared, distill)) as loss:
        history = fit(prepared, (x[:-held], y[:-held]), held_out, config, log, loss)
    return FinetuneResult(prepared.eval(), ann.input_shape, history, accuracy(prepared, *test),
                          start_accuracy, chosen, start_held_out, tested_on)


def save_torchscript(model: nn.Module, path: str | Path,
                     input_shape: tuple[int, ...] | None = None) -> None:
    """TorchScript is what neurodeploy loads without trusting pickled code; written atomically.
    ``input_shape`` (one sample) is recorded so compile needs no --input-shape."""
    from neurodeploy.frontend.capture_script import INPUT_SHAPE_ATTRIBUTE

    if input_shape is not None:
        setattr(model, INPUT_SHAPE_ATTRIBUTE, tuple(int(d) for d in input_shape))
    with warnings.catch_warnings():  # torch.fx modules script with a harmless annotation note
        warnings.filterwarnings("ignore", message=".*instance-level annotations")
        scripted = torch.jit.script(model.eval())
    atomic_write(path, lambda tmp: torch.jit.save(scripted, tmp))
