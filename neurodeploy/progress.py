"""Progress bars for long work, on stderr and only when it is a terminal."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], description: str, enabled: bool = True) -> Iterable[T]:
    return tqdm(items, desc=description, disable=None if enabled else True, leave=False)


def counter(total: int, description: str, enabled: bool = True) -> tqdm:
    """A bar advanced by hand (``update``) that also shows a status (``set_postfix_str``),
    e.g. a training run's loss and held-out accuracy across all its epochs."""
    return tqdm(total=total, desc=description, disable=None if enabled else True, leave=False)
