"""Conversion methods: named stages that turn an ANN (plus calibration data) into a float SNN.

A method only chooses parameters (thresholds, v_init, burst, dual threshold, corrections);
the neuron rule and the integer passes are the same for all of them. The contract is in
``methods/base.py``; ``get_method("calibrate+ftbc")`` parses a ``+``-joined list.
"""

from __future__ import annotations

from collections.abc import Callable

from neurodeploy.convert import parse_statistic
from neurodeploy.errors import InputError
from neurodeploy.methods.adafire import AdaFire
from neurodeploy.methods.auto import Auto
from neurodeploy.methods.base import Method, MethodContext, Stage, compose
from neurodeploy.methods.calibration import LIGHT, Calibrate, Correct
from neurodeploy.methods.dual_phase import DualPhase
from neurodeploy.methods.ftbc import Ftbc
from neurodeploy.methods.iat import Iat
from neurodeploy.methods.learned import ecl, qcfs
from neurodeploy.methods.normalization import Normalization

DEFAULT_METHOD = "auto"  #: what compile runs when no method is named
DEFAULT_BUILDER = "p99.99"  #: the thresholds of a method that names no builder (ftbc, iat)

#: stage name -> factory. Percentile statistics (p99.9, p99.99, ...) are parsed, not listed.
STAGES: dict[str, Callable[[], Stage]] = {
    "max": lambda: Normalization("max"),
    "qcfs": qcfs,
    "ecl": ecl,
    "dual_phase": DualPhase,
    "adafire": AdaFire,
    "auto": Auto,
    "calibrate": Calibrate,
    "calibrate_light": lambda: LIGHT,
    "correct": Correct,
    "ftbc": Ftbc,
    "iat": Iat,
}

__all__ = ["DEFAULT_BUILDER", "DEFAULT_METHOD", "STAGES", "Method", "MethodContext", "Stage",
           "available_methods", "get_method"]


def available_methods() -> list[str]:
    return [*sorted(STAGES), "pNN.NN (a percentile above 0, e.g. p99.99)"]


def get_method(spec: str) -> Method:
    """'p99.99', 'calibrate+ftbc', ...: validated, with the default builder when none is named."""
    if not isinstance(spec, str):
        raise InputError(f"method must be a name such as 'calibrate+ftbc', got {spec!r}",
                         hint=f"Choose from: {', '.join(available_methods())}")
    stages = [_stage(name.strip(), spec) for name in spec.split("+")]
    return compose(stages, _stage(DEFAULT_BUILDER, spec), spec)


def _stage(name: str, spec: str) -> Stage:
    if name in STAGES:
        return STAGES[name]()
    try:
        parse_statistic(name)
    except InputError:
        raise InputError(f"unknown method '{name}'" + (f" in '{spec}'" if spec != name else ""),
                         hint=f"Choose from: {', '.join(available_methods())}; join stages "
                              "with '+'") from None
    return Normalization(name)
