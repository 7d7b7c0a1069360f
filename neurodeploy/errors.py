"""One error family; each kind names what is wrong, where, and what to do.

The CLI turns any NeurodeployError into one line on stderr and exit code 2, so messages
must read well on their own: "<where>: <what>. <hint>".
"""

from __future__ import annotations

import numpy as np


class NeurodeployError(Exception):
    """Base class: a user-facing problem with an input, a model, a target or a file."""

    def __init__(self, message: str, *, node: str | None = None, hint: str | None = None):
        self.message, self.node, self.hint = message, node, hint
        text = f"{node}: {message}" if node else message
        if hint:
            text = f"{text}. {hint}" if not text.endswith(".") else f"{text} {hint}"
        super().__init__(text)


class InputError(NeurodeployError):
    """A file, argument or array the user gave cannot be used."""


def whole_number(value: object, name: str, least: int = 1) -> int:
    """``value`` as a count of at least ``least`` (timesteps, samples, epochs, seeds, ...): a
    bool, a float or a string is refused, not rounded or parsed."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    if value < least:
        raise InputError(f"{name} must be at least {least}, got {value}")
    return int(value)


def all_whole(values: object) -> bool:
    """Every value finite and integral (counts, labels, integer weights held as floats)."""
    values = np.asarray(values, np.float64)
    return bool(np.isfinite(values).all() and (values == np.round(values)).all())


class TrustError(NeurodeployError):
    """Loading would run arbitrary code (pickle) and the user did not allow it."""


class UnsupportedLayer(NeurodeployError):
    """A model node has no mapping to the spiking network."""


class TargetError(NeurodeployError):
    """A target file is missing, malformed or unknown."""


class TargetLimitExceeded(NeurodeployError):
    """The network does not fit a target's bit widths or resources."""

    def __init__(self, *, node: str, limit: str, value: object, allowed: object, hint: str = ""):
        self.limit, self.value, self.allowed = limit, value, allowed
        super().__init__(f"{limit} is {value}, the target allows {allowed}", node=node,
                         hint=hint or None)


class WeightsLost(NeurodeployError):
    """Every weight of a synapse layer rounds to zero on the target: it would pass nothing."""


class SaturationRisk(TargetLimitExceeded):
    """A membrane may saturate within the window (``allow_saturation`` accepts that)."""

    def __init__(self, *, node: str, bits: int, steps: int, timesteps: int, hint: str):
        NeurodeployError.__init__(
            self, f"the {bits}-bit membrane may saturate after {steps} steps, within the "
                  f"window of T={timesteps}", node=node, hint=hint)
        self.limit, self.value, self.allowed = f"{bits}-bit membrane", steps, timesteps


class MetadataError(NeurodeployError):
    """A NIR file is not one of ours, is damaged, or has an unknown schema."""


class BackendUnavailable(NeurodeployError):
    """A backend's optional dependency is not installed."""


class BitExactMismatch(NeurodeployError, AssertionError):
    """Two backends disagree (``neurodeploy.testing.assert_bit_exact``). An AssertionError
    too, so a test runner reports a failed check, not a crash; ``divergence`` is the first
    difference (``neurodeploy.verify.Divergence``)."""

    def __init__(self, message: str, *, divergence: object):
        self.divergence = divergence
        super().__init__(message)
