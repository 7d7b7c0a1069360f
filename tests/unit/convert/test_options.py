"""ConvertOptions checks and normalizes its fields, naming them as the user's."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy.convert import ConvertOptions
from neurodeploy.errors import InputError


@pytest.mark.parametrize(("fields", "message"), [
    # a v_init of 50 thetas compiled a network at 10% on digits, with no word
    ({"v_init_ratio": 50.0}, r"options\.v_init_ratio must be a number in \[0, 1\]"),
    ({"v_init_ratio": -3.0}, r"options\.v_init_ratio must be a number in \[0, 1\]"),
    ({"v_init_ratio": float("nan")}, r"options\.v_init_ratio must be a number"),
    ({"v_init_ratio": "0.5"}, r"options\.v_init_ratio must be a number"),  # a numpy ufunc error
    # 1e9 thetas overflowed int32 into "values -2147483648..-2147483648"
    ({"theta_neg_ratio": 1e9}, r"options\.theta_neg_ratio must be a number in \[0, 1\]"),
    ({"theta_neg_ratio": True}, r"options\.theta_neg_ratio must be a number"),
    # "metadata key 'dual' is malformed", naming a population
    ({"dual": "no"}, r"options\.dual must be True or False, got 'no'"),
    ({"per_channel": None}, r"options\.per_channel must be True or False, got None"),
    ({"max_burst": 0}, r"options\.max_burst must be at least 1, got 0"),
    ({"max_burst": 2.0}, r"options\.max_burst must be a whole number"),
])
def test_bad_fields_are_refused_by_name(fields, message):
    with pytest.raises(InputError, match=f"^{message}"):
        ConvertOptions(**fields)


def test_numpy_scalars_are_plain_values():
    """np.int64(2) was refused as "'max_burst' must be an integer" at compile."""
    options = ConvertOptions(max_burst=np.int64(2), dual=np.bool_(True),
                             v_init_ratio=np.float32(0.25), timesteps=np.int32(8))
    assert options == ConvertOptions(max_burst=2, dual=True, v_init_ratio=0.25, timesteps=8)
    assert [type(v) for v in (options.max_burst, options.dual, options.v_init_ratio,
                              options.timesteps)] == [int, bool, float, int]
