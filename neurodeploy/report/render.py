"""Text renderings of a report's data: the summary the CLI prints, and report.md."""

from __future__ import annotations

from neurodeploy.passes.check_overflow import HORIZON
from neurodeploy.report.static import capacity_line, format_range

COLUMNS = ("population", "neurons", "rate", "saturated", "dead", "corr", "rel. error",
           "synops/inf", "energy/inf", "hints")


def summary(data: dict) -> str:
    lines = [_headline(data), _accuracy(data), _table(data, plain=True), _totals(data),
             capacity_line(data["capacity"])]
    hinted = [(layer["population"], hint) for layer in data["layers"]
              for hint in layer["hints"]]
    if hinted:
        lines.append("hints (errors compound: start with the first layer):")
        lines += [f"  {name}: {hint}" for name, hint in hinted]
    return "\n".join(lines)


def markdown(data: dict) -> str:
    net, plots = data["network"], data["plots"]
    out = [f"# Deployment report: {net['path'] or 'network'}", "", _headline(data), "",
           _accuracy(data), "", f"![accuracy vs timesteps]({plots['accuracy']})", "",
           "## Per layer", "", _table(data, plain=False), "",
           f"![error per layer]({plots['error']})", "",
           f"![firing rate per layer]({plots['firing_rate']})", "", "## Resources", "",
           _resources(data), "", "## Operations and energy per inference", "", _totals(data),
           "", f"Energy constants: {data['operations']['synop_pj']} pJ per synaptic "
           f"operation, {data['operations']['neuron_update_pj']} pJ per neuron update "
           f"({data['operations']['energy_source']}).", "", "## Capacity", "",
           capacity_line(data["capacity"]), "", _placement(data), "",
           f"![chips and cross-chip spikes]({plots['chips']})", "", "## Hints", ""]
    hinted = [f"- **{layer['population']}**: {hint}" for layer in data["layers"]
              for hint in layer["hints"]]
    out += hinted or ["None: every layer is within the thresholds (docs/report.md)."]
    out += ["", "## Membrane traces", "", f"![membrane traces]({plots['membrane']})", "",
            "Field meanings, the allocator and the energy sources: docs/report.md.", ""]
    return "\n".join(out)


def _headline(data: dict) -> str:
    net, ds, ref = data["network"], data["dataset"], data["ann_reference"]
    return (f"report of {net['path'] or 'the network'} on {ds['name']} ({ds['samples']} "
            f"{ds['split']} samples): target {net['target']}, method {net['method']}, "
            f"T={net['timesteps']}\nANN reference: {ref['description']}")


def _accuracy(data: dict) -> str:
    acc, compiled = data["accuracy"], data["network"]["timesteps"]
    others = ", ".join(f"T={t} {100 * acc['snn'][str(t)]:.2f}%" for t in acc["timesteps"]
                       if t != compiled)
    return (f"accuracy: SNN {100 * acc['snn'][str(compiled)]:.2f}% at T={compiled} "
            f"({others}); ANN reference {100 * acc['ann']:.2f}%")


def _table(data: dict, plain: bool) -> str:
    rows = []
    for layer in data["layers"]:
        activity, error, ops = layer["activity"], layer["ann_vs_snn"], layer["operations"]
        rows.append([
            layer["population"], layer["neurons"],
            _num(activity and activity["firing_rate"]),
            _pct(activity and activity["saturated_fraction"]),
            _pct(activity and activity["dead_fraction"]), _num(error["correlation"]),
            _num(error["relative_mae"]), _si(ops["synops"]), _si(ops["energy_pj"] * 1e-12, "J"),
            len(layer["hints"])])
    return _grid(COLUMNS, rows, plain)


def _resources(data: dict) -> str:
    columns = ("population", "shape", "synapses", "fan-in max", "weights (int)", "weight exp",
               "theta (int)", "spike value", "v_init", "burst", "dual", "bias table",
               "\\|v\\| bound", "limit", "safe T", "cores")
    rows = [[layer["population"], "x".join(map(str, layer["shape"])), layer["synapses"],
             layer["fan_in_max"], _range(layer["weight_mantissa"]), layer["weight_exponent"],
             _range(layer["theta"]), _range(layer["spike_value"]), _range(layer["v_init"]),
             layer["max_burst"], "yes" if layer["dual"] else "no",
             layer["bias_table_entries"] or "-", layer["membrane_bound"],
             layer["membrane_limit"], _safe(layer["safe_timesteps"]), layer["cores"]]
            for layer in data["layers"]]
    return _grid(columns, rows, plain=False)


def _placement(data: dict) -> str:
    """Per population: its cores on each chip and the spikes it sends to other chips."""
    rows = [[layer["population"], layer["cores"],
             ", ".join(f"{row['chip']}: {row['cores']}" for row in layer["chips"]) or "-",
             layer["memory_bits"] or "-", _si(layer["cross_chip_spikes"])]
            for layer in data["layers"]]
    return _grid(("population", "cores", "chip: cores", "memory bits",
                  "cross-chip spikes/inf"), rows, plain=False)


def _totals(data: dict) -> str:
    ops = data["operations"]
    ratio = f" ({ops['synops'] / ops['ann_macs']:.2f} synaptic ops per MAC)" \
        if ops["ann_macs"] else ""
    return (f"per inference (T={ops['timesteps']}): {_si(ops['synops'])} synaptic operations, "
            f"{_si(ops['neuron_updates'])} neuron updates, {_si(ops['energy_pj'] * 1e-12, 'J')}"
            f"; float ANN: {_si(ops['ann_macs'])} MACs{ratio}")


def _grid(columns, rows, plain: bool) -> str:
    cells = [[str(c) for c in row] for row in [list(columns), *rows]]
    if not plain:
        lines = ["| " + " | ".join(row) + " |" for row in cells]
        lines.insert(1, "|" + "|".join("---" for _ in columns) + "|")
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                     for row in cells)


def _safe(steps: int) -> str:
    """The bound check follows at most HORIZON steps: reaching it means no limit was found."""
    return f">={HORIZON}" if steps >= HORIZON else str(steps)


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _range(value) -> str:
    return "-" if value is None else format_range(value["min"], value["max"])


def _si(value: float, unit: str = "") -> str:
    """3 significant digits with an SI prefix: 1.23 M, 45.6 uJ."""
    if value == 0:
        return f"0 {unit}".strip()
    prefixes = [(1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "u"),
                (1e-9, "n"), (1e-12, "p")]
    scale, prefix = next(((s, p) for s, p in prefixes if abs(value) >= s), prefixes[-1])
    return f"{value / scale:.3g} {prefix}{unit}".strip()
