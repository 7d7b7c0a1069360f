"""MMSE threshold search (SNN calibration, Li et al. 2021; algorithms.md §2.2 and §4.1).

A neuron with threshold theta, at most ``B`` spikes per step and the theta/(2T) rounding
shift sends, over T steps, the ANN activation ``a`` rounded to the grid theta/T and clipped to
[0, B * theta]. The search picks, per layer or per channel, the theta among
``max(a) * (1 - 0.01 i)``, i = 0..94, that minimises the mean squared error of that
quantizer over the calibration activations: a lower theta clips more but rounds finer.
"""

from __future__ import annotations

import numpy as np

from neurodeploy.backends.memory import DEFAULT_MEMORY_BUDGET
from neurodeploy.frontend.ann import ACTIVATIONS, AnnGraph
from neurodeploy.methods.probe import ann_chunks

#: candidates max * (1 - STEP * i) for i < CANDIDATES (the authors' grid)
CANDIDATES, STEP = 95, 0.01
#: activations sampled per channel: the error of a grid point is a mean, which this many
#: samples estimate far below the spacing between candidates
MAX_SAMPLES = 20_000


def quantized(a: np.ndarray, theta: np.ndarray, timesteps: int, max_burst: int) -> np.ndarray:
    """What the rounding-shifted burst neuron sends on average for activation ``a``.

    This is the rule's (core/neuron.py) spike count over T, times theta / T, for a constant
    input ``a`` every step with the bias theta/(2T) (``corrections.rounding_shift``), v_init 0,
    reset by subtraction and no leak, input shift, dual threshold or saturation: exactly when
    ``a`` and theta/(2T) are integers (tests/unit/core/test_rule_mirrors.py), and up to the
    rounding of those two otherwise."""
    return _sent(_levels(a, theta, timesteps), theta, timesteps, max_burst)


def _levels(a: np.ndarray, theta: np.ndarray, timesteps: int) -> np.ndarray:
    """``a`` rounded to the grid theta / T, in grid steps, before the burst limit."""
    return np.floor(a * timesteps / theta + 0.5)


def _sent(levels: np.ndarray, theta: np.ndarray, timesteps: int, max_burst: int
          ) -> np.ndarray:
    """What the neuron sends for rounded ``levels``: at most ``max_burst`` spikes a step."""
    return np.clip(levels, 0, max_burst * timesteps) * theta / timesteps


def activation_samples(ann: AnnGraph, images: np.ndarray, per_channel: bool, seed: int,
                       memory_budget: int = DEFAULT_MEMORY_BUDGET) -> dict[str, np.ndarray]:
    """Per activation node: (channels, samples) values, or (1, samples) per layer, at most
    ``MAX_SAMPLES`` drawn with ``seed`` from the values in (channel, image, position) order.
    The draw is made up front and the ANN runs on chunks of images within ``memory_budget``,
    keeping only the drawn values: memory does not grow with the number of images."""
    shapes = ann.shapes()
    names = [n.name for n in ann.nodes if n.op in ACTIVATIONS]
    rng = np.random.default_rng(seed)
    picks = {name: _Draw(shapes[name], len(images), per_channel, rng) for name in names}
    for first, acts in ann_chunks(ann, images, set(names), memory_budget):
        for name in names:
            value = acts[name]
            picks[name].take(value.reshape(*value.shape[:2], -1).numpy(), first)
    return {name: pick.values for name, pick in picks.items()}


class _Draw:
    """The values of one activation drawn for the MMSE search, filled chunk by chunk."""

    def __init__(self, shape: tuple[int, ...], images: int, per_channel: bool,
                 rng: np.random.Generator):
        channels, positions = shape[0], int(np.prod(shape[1:]))
        rows, total = (channels, images * positions) if per_channel else \
            (1, channels * images * positions)
        flat = rng.choice(total, MAX_SAMPLES, replace=False) if total > MAX_SAMPLES else \
            np.arange(total)
        self.channel = None if per_channel else flat // (images * positions)
        self.image, self.position = np.divmod(flat % (images * positions), positions)
        self.values = np.empty((rows, len(flat)), np.float64)

    def take(self, acts: np.ndarray, first: int) -> None:
        """Keep the drawn values of the images ``first`` .. ``first + len(acts)`` (acts:
        (images, channels, positions))."""
        here = (self.image >= first) & (self.image < first + len(acts))
        image, position = self.image[here] - first, self.position[here]
        if self.channel is None:
            self.values[:, here] = acts[image, :, position].T
        else:
            self.values[0, here] = acts[image, self.channel[here], position]


def mmse_threshold(values: np.ndarray, timesteps: int, max_burst: int) -> np.ndarray:
    """(channels, samples) -> (channels,) thresholds minimising the quantization MSE; a
    silent channel gets the largest threshold of its layer (it sends nothing either way)."""
    return mmse_thresholds_by_burst(values, timesteps, [max_burst])[max_burst]


def mmse_thresholds_by_burst(values: np.ndarray, timesteps: int, bursts: list[int]
                             ) -> dict[int, np.ndarray]:
    """``mmse_threshold`` for each burst size, one channel at a time over all the candidates
    (``candidate_errors``)."""
    top = values.max(axis=1)
    # a silent channel's threshold does not matter while searching (it is replaced below)
    thetas = np.where(top > 0, top, 1.0)[:, None] * (1 - STEP * np.arange(CANDIDATES))
    chosen = {b: np.empty(len(top)) for b in bursts}
    for c, row in enumerate(values):
        for b, errors in candidate_errors(row, thetas[c], timesteps, bursts).items():
            chosen[b][c] = thetas[c, np.argmin(errors)]  # the first of equal errors
    return {b: np.where(top > 0, theta, theta.max()) for b, theta in chosen.items()}


def candidate_errors(values: np.ndarray, thetas: np.ndarray, timesteps: int,
                     bursts: list[int]) -> dict[int, np.ndarray]:
    """Per burst size, the mean squared error of ``quantized`` over ``values`` (samples,) for
    each of ``thetas``, from the sorted values' running sums: the values rounded to level k
    are those between two edges, (k - 1/2) theta/T and (k + 1/2) theta/T, and their squared
    error to k theta/T follows from their count, sum and sum of squares. A candidate costs a
    binary search per level instead of a pass over every value (the search was a fifth of a
    ResNet-18 calibrate). Equal to the direct mean up to float rounding. With more levels than
    a sixteenth of the values (long windows, large bursts) the passes cost less, and are made.
    """
    top_level = max(bursts) * timesteps
    if top_level * 16 > len(values):
        column = thetas[:, None]
        levels = _levels(values, column, timesteps)  # the same for every burst size
        return {b: np.square(values - _sent(levels, column, timesteps, b)).mean(axis=1)
                for b in bursts}
    ordered = np.sort(values)
    sums = np.concatenate([[0.0], np.cumsum(ordered)])
    squares = np.concatenate([[0.0], np.cumsum(ordered * ordered)])
    step = thetas[:, None] / timesteps  # (candidates, 1): the value of one level
    # values below the edge of level k (k = 1..top): at or above it they round to k or more
    below = np.searchsorted(ordered, (np.arange(1, top_level + 1) - 0.5) * step)
    out = {}
    for b in bursts:
        bounds = np.concatenate([np.zeros((len(thetas), 1), np.int64),
                                 below[:, :b * timesteps],
                                 np.full((len(thetas), 1), len(ordered))], axis=1)
        low, high = bounds[:, :-1], bounds[:, 1:]  # the values sent level k = 0..b T
        sent = np.arange(b * timesteps + 1) * step
        error = (squares[high] - squares[low] - 2 * sent * (sums[high] - sums[low])
                 + (high - low) * sent * sent)
        out[b] = error.sum(axis=1) / len(ordered)
    return out


def mmse_thresholds(samples: dict[str, np.ndarray], timesteps: int, max_burst: dict[str, int],
                    per_channel: bool) -> dict[str, float | np.ndarray]:
    """Per activation node: its searched theta ((C,) per channel, float per layer)."""
    out: dict[str, float | np.ndarray] = {}
    for name, values in samples.items():
        theta = mmse_threshold(values, timesteps, max_burst[name])
        out[name] = theta if per_channel else float(theta[0])
    return out
