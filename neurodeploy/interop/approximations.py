"""What an imported network loses on its target: the import's own approximations (leak
resolution, dropped synaptic filters, reset) and the integer passes' rounding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Approximation:
    """Something the target cannot express exactly, and what it costs."""

    node: str
    what: str
    exact: str
    deployed: str
    error: str


def rounding_rows(notes: dict[str, dict[str, Any]], weight_bits: int) -> list[Approximation]:
    """The passes' recorded rounding: weights to the target's mantissa, thresholds to the
    membrane grid (relative errors, from the pipeline's notes)."""
    weights = notes.get("quantize_weights", {}).get("relative_rms_error", {})
    rows = [Approximation(name, "weights", "float", f"{weight_bits}-bit mantissa",
                          f"{error:.2e} relative RMS") for name, error in weights.items()]
    thresholds = notes.get("quantize_thresholds", {}).get("max_relative_error", {})
    return rows + [Approximation(name, "threshold", "float", "integer", f"{error:.2e} relative")
                   for name, error in thresholds.items() if error > 0]


def table(rows: list[Approximation]) -> str:
    """Aligned text table (one header line, one line per row)."""
    header = Approximation("node", "what", "exact", "deployed", "error")
    cells = [[r.node, r.what, r.exact, r.deployed, r.error] for r in (header, *rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)
