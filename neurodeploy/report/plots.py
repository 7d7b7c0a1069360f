"""The report's figures as PNG bytes (matplotlib's object API on the Agg canvas: no pyplot,
no global backend switch, nothing shown)."""

from __future__ import annotations

import io
import math

import numpy as np

from neurodeploy.report.diagnose import CORRELATION

DPI = 110
COLORS = ("tab:blue", "tab:orange", "tab:green")


def accuracy_plot(accuracy: dict[int, float], ann: float, ann_label: str,
                  compiled: int) -> bytes:
    fig, ax = _figure(6.4, 4.0)
    steps = sorted(accuracy)
    ax.plot(steps, [100 * accuracy[t] for t in steps], "o-", label="SNN (integer, reference)")
    ax.axhline(100 * ann, color="gray", linestyle="--", label=ann_label)
    ax.axvline(compiled, color="tab:red", linestyle=":", label=f"compiled T={compiled}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(steps, [str(t) for t in steps])
    ax.set_xlabel("timesteps T")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy vs timesteps")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _png(fig)


def error_plot(layers: list[dict]) -> bytes:
    fig, (left, right) = _figure(max(6.4, 1.2 * len(layers) + 3), 4.0, ncols=2)
    names = [layer["population"] for layer in layers]
    relative = [layer["ann_vs_snn"]["relative_mae"] or 0.0 for layer in layers]
    correlation = [layer["ann_vs_snn"]["correlation"] or 0.0 for layer in layers]
    left.bar(names, relative, color="tab:orange")
    left.set_ylabel("mean |SNN - ANN| / mean |ANN|")
    left.set_title("Relative error per layer")
    right.bar(names, correlation, color="tab:blue")
    right.axhline(CORRELATION, color="tab:red", linestyle=":", label=f"hint below {CORRELATION}")
    right.set_ylim(min(0.0, *correlation), 1.0)
    right.set_ylabel("correlation SNN rate vs ANN")
    right.set_title("Correlation per layer")
    right.legend(loc="lower left")
    return _by_population(fig, (left, right))


def rate_plot(layers: list[dict]) -> bytes:
    firing = [layer for layer in layers if layer["activity"] is not None]
    fig, (left, right) = _figure(max(6.4, 1.2 * len(firing) + 3), 4.0, ncols=2)
    names = [layer["population"] for layer in firing]
    left.bar(names, [layer["activity"]["firing_rate"] for layer in firing], color="tab:green")
    left.set_ylabel("spikes per neuron per step")
    left.set_title("Firing rate per layer")
    x = np.arange(len(firing))
    for offset, key, label, color in ((-0.2, "saturated_fraction", "at the maximum rate",
                                       "tab:red"),
                                      (0.2, "dead_fraction", "never fired", "tab:gray")):
        right.bar(x + offset, [100 * layer["activity"][key] for layer in firing], width=0.4,
                  label=label, color=color)
    right.set_xticks(x, names)
    right.set_ylabel("% of neurons")
    right.set_title("Saturated and silent neurons")
    right.legend(loc="upper right")
    return _by_population(fig, (left, right))


def chips_plot(layers: list[dict], chips: int) -> bytes:
    """Left: each population's cores, stacked by chip; right: the spikes per inference each
    population sends to other chips."""
    from matplotlib import colormaps

    fig, (left, right) = _figure(max(6.4, 1.2 * len(layers) + 3), 4.0, ncols=2)
    names = [layer["population"] for layer in layers]
    bottom = np.zeros(len(layers))
    used = sorted({row["chip"] for layer in layers for row in layer["chips"]})
    for i, chip in enumerate(used):
        cores = np.array([sum(r["cores"] for r in layer["chips"] if r["chip"] == chip)
                          for layer in layers], np.float64)
        left.bar(names, cores, bottom=bottom, color=colormaps["tab20"](i % 20),
                 label=f"chip {chip}")
        bottom += cores
    left.set_ylabel("cores")
    left.set_title(f"Cores per population ({len(used)} of {chips} chips used)" if used
                   else "Cores per population (not modelled on this target)")
    if 1 < len(used) <= 12:
        left.legend(fontsize="small", loc="upper left")
    right.bar(names, [layer["cross_chip_spikes"] for layer in layers], color="tab:purple")
    right.set_ylabel("spikes sent to other chips per inference")
    right.set_title("Spikes crossing chips")
    return _by_population(fig, (left, right), rotate=True)


def membrane_plot(traces: dict[str, dict], compiled: int) -> bytes:
    cols = min(3, len(traces))
    rows = math.ceil(len(traces) / cols)
    fig, axes = _figure(4.2 * cols, 3.2 * rows, nrows=rows, ncols=cols, squeeze=False)
    for ax, (name, trace) in zip(axes.flat, traces.items(), strict=False):
        steps = np.arange(1, trace["membrane"].shape[0] + 1)
        for k, neuron in enumerate(trace["neurons"]):
            color = COLORS[k % len(COLORS)]
            ax.step(steps, trace["membrane"][:, k], where="mid", color=color,
                    label="neuron " + ",".join(map(str, neuron)))
            if trace["fires"]:
                ax.axhline(trace["theta"][k], color=color, linestyle="--", linewidth=0.8)
                for sign, marker in ((1, "^"), (-1, "v")):
                    sent = np.sign(trace["spikes"][:, k]) == sign
                    ax.plot(steps[sent], trace["membrane"][sent, k], marker, color=color)
        ax.axvline(compiled + 0.5, color="tab:red", linestyle=":", linewidth=0.8)
        ax.set_title(name if trace["fires"] else f"{name} (integrates, never fires)")
        ax.set_xlabel("step")
        ax.set_ylabel("membrane v (integer units)")
        ax.legend(fontsize="small", loc="upper right")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(traces):]:
        ax.set_visible(False)
    fig.suptitle("Membrane after each step (dashed: threshold; ^ / v: positive / negative "
                 "spike sent; dotted: end of the compiled window)")
    return _png(fig)


def _figure(width: float, height: float, **subplots):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(**subplots)


def _by_population(fig, axes, rotate: bool = False) -> bytes:
    """Label the panels' x axes (populations), grid their bars and render the figure."""
    for ax in axes:
        ax.set_xlabel("population")
        if rotate:
            ax.tick_params(axis="x", labelrotation=45)
        ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
