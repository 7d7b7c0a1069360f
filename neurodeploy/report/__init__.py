"""The deployment report: per-layer diagnostics, capacity, operations and energy, plots.

``static`` holds what a compiled graph says without running it (also printed by `compile`);
``build_report`` adds what a run on a labelled dataset measures.
"""
