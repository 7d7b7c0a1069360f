"""Distillation from the user's ANN (neurodeploy/distill.py) and the clips' levels from the
deployment window (train.clip_levels)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import neurodeploy.nn as ndnn
from neurodeploy.distill import Distillation, DistillLoss
from neurodeploy.errors import InputError
from neurodeploy.train import DEFAULT_LEVELS, clip_levels
from tests.models import digits_batch, trained_digits_mlp


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(digits_batch(64))
    return x, torch.arange(64) % 10


def test_without_the_teacher_term_the_loss_is_the_label_loss():
    teacher = trained_digits_mlp()
    student = copy.deepcopy(teacher)
    x, y = batch()
    loss = DistillLoss(teacher, student, Distillation(weight=0.0))(student, x, y)
    assert torch.allclose(loss, F.cross_entropy(student(x), y))


def test_a_student_equal_to_its_teacher_has_no_soft_loss_and_a_different_one_has():
    teacher = trained_digits_mlp()
    x, y = batch()
    same = copy.deepcopy(teacher)
    assert DistillLoss(teacher, same, Distillation(weight=1.0))(same, x, y).item() < 1e-6
    other = ndnn.prepare(teacher, "ecl", levels=1, calib=x)
    assert DistillLoss(teacher, other, Distillation(weight=1.0))(other, x, y).item() > 1e-3


def test_activation_term_pairs_clips_with_relus_and_leaves_no_hooks():
    teacher = trained_digits_mlp()
    x, y = batch()
    student = ndnn.prepare(teacher, "ecl", levels=2, calib=x)
    logits_only = DistillLoss(teacher, student, Distillation())(student, x, y)
    with DistillLoss(teacher, student, Distillation(activations=1.0)) as loss:
        assert loss.pairs == [n for n, m in student.named_modules()
                              if isinstance(m, ndnn.ThresholdClip)]
        assert loss(student, x, y).item() > logits_only.item()
        student.eval()(x)  # evaluating keeps no activations
        assert not loss._seen
    modules = [*teacher.modules(), *student.modules()]
    assert not any(m._forward_hooks for m in modules)


@pytest.mark.parametrize("bad", [{"temperature": 0.0}, {"weight": 1.5}, {"activations": -1.0}])
def test_bad_distillation_settings_are_input_errors(bad):
    with pytest.raises(InputError):
        Distillation(**bad)


@pytest.mark.parametrize("levels, timesteps, expected", [(None, 2, 2), (None, 1, 1), (8, 2, 8),
                                                         (None, None, DEFAULT_LEVELS)])
def test_clip_levels_follow_the_window_unless_given(levels, timesteps, expected):
    assert clip_levels(levels, timesteps) == expected


@pytest.mark.parametrize("levels, timesteps", [(0, None), (None, 0), (None, -3)])
def test_clip_levels_must_be_positive(levels, timesteps):
    with pytest.raises(InputError):
        clip_levels(levels, timesteps)
