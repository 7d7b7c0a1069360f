"""The `neurodeploy` command: parse, call the API, print. How it ends: ``cli_errors``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from neurodeploy import __version__
from neurodeploy.cli_errors import Group, run_process
from neurodeploy.data import load_dataset, load_samples
from neurodeploy.errors import InputError, NeurodeployError
from neurodeploy.fileio import output_dir, output_file


class _Path(click.Path):
    """An empty path is a usage error: it names no file (and ``Path("")`` is ".")."""

    def convert(self, value, param, ctx):
        if value == "":
            self.fail("the path is empty", param, ctx)
        return super().convert(value, param, ctx)


PATH = _Path()


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--timesteps must be comma-separated integers, got '{text}'") from None
    if not values or min(values) < 1:
        raise InputError(f"--timesteps must be positive integers, got '{text}'")
    return values


def _warn_saturation(safe: int, windows: list[int]) -> None:
    """A window past the one compile proved safe runs, but a membrane may saturate in it (the
    chip clips it too, so the run is still what the chip computes): say so."""
    longer = [t for t in windows if safe and t > safe]
    if longer:
        click.echo(f"warning: T={max(longer)} is past T={safe}, the longest window in which no "
                   "membrane can saturate: membranes may clip there (as on the chip)", err=True)


def _print_summary(summary: dict, as_json: bool) -> None:
    click.echo(json.dumps(summary, indent=2) if as_json else summary["text"])
    for warning in summary["warnings"]:
        click.echo(f"warning: {warning}", err=True)


def _budget(text: str | None) -> int:
    from neurodeploy.backends.memory import DEFAULT_MEMORY_BUDGET, parse_memory

    return DEFAULT_MEMORY_BUDGET if text is None else parse_memory(text)


def _workers(count: int | None, address: str | None):
    from neurodeploy.shards import Workers, import_ray

    workers = Workers(count, address)
    if workers.distributed:
        import_ray()  # before loading anything: a missing extra is one line, at once
    return workers


COUNT = click.IntRange(min=1)  #: a count: the flag is named when it is below 1
ARCH = click.option("--arch", help="module:ClassName, to load a state dict.")
MEMORY_BUDGET = click.option(
    "--memory-budget", help="Memory a simulator run may hold, e.g. 2GB or 512MiB; samples run "
    "in chunks that fit (default: 2GB).")
WORKERS = click.option("--workers", type=int, help="Run the samples on a local Ray of N worker "
                       "processes (needs the [ray] extra; docs/ray.md).")
ADDRESS = click.option("--address", help="Run the samples on the Ray cluster at this address "
                       "(host:port, or auto; needs the [ray] extra).")
WINDOW = click.option("--timesteps", "-T", type=COUNT, help="Window length (default: as compiled).")
ALLOW_SATURATION = click.option("--allow-saturation", is_flag=True, help="Report, instead of "
                                "refusing, membranes that may saturate within T.")


def _list_passes(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """Eager, as --help is: the pipeline prints before a missing MODEL is an error."""
    if value:
        from neurodeploy.passes import DEFAULT_PIPELINE

        click.echo("\n".join(DEFAULT_PIPELINE))
        ctx.exit()


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise InputError(f"--input-shape must look like 1,28,28, got '{text}'") from None


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="neurodeploy")  # the one home of the version
@click.option("--debug", is_flag=True, help="Print the traceback of an error.")
def main(debug) -> None:
    """Deploy PyTorch networks as integer spiking networks on Loihi-class hardware. Errors:
    one line, exit code 2 (see neurodeploy/cli_errors.py)."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print every target in full as JSON.")
def targets(as_json) -> None:
    """List the hardware targets and their main limits."""
    from dataclasses import asdict

    from neurodeploy import api

    chips = api.list_targets()
    if as_json:
        click.echo(json.dumps([asdict(t) for t in chips], indent=2))
        return
    width = max(len(t.name) for t in chips)
    click.echo(f"{'target':<{width}} {'weights':>7} {'membrane':>8} {'spikes':<16} {'hop':>3} "
               f"{'chips':>5} {'cores':>11}  description")
    for t in chips:
        spikes = ("graded" if t.spikes.graded else "binary") + (
            ", signed" if t.spikes.signed else "")
        cores = (f"{t.limits.cores}x{t.limits.neurons_per_core}" if t.limits.cores
                 and t.limits.neurons_per_core else "-")
        click.echo(f"{t.name:<{width}} {t.weights.mantissa_bits:>5}b "
                   f"{t.neuron.membrane_bits:>7}b {spikes:<16} {t.timing.hop_delay:>3} "
                   f"{t.system.chips:>5} {cores:>11}  {t.description}")


@main.command(name="compile")
@click.argument("model", type=PATH)
@click.option("--target", default="loihi2", show_default=True, help="Target name or .toml path.")
@click.option("--method", default="auto", show_default=True,
              help="Conversion method: auto (the most accurate training-free method for the "
                   "target; needs --calib), max, a percentile such as p99.99 (fast, "
                   "less accurate), or stages joined with '+' (see docs/methods.md).")
@click.option("--calib", help="Calibration data: digits, fashion-mnist, an .npz file with x, or an "
                                     ".npy file of images.")
@click.option("--calib-samples", default=512, show_default=True, type=COUNT,
              help="Calibration images per stage (calibrate's weight fit takes at least 1024, "
                   "iat at least 2048 from the same source).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Draws the calibration images and seeds the calibration.")
@click.option("--timesteps", "-T", default=4, show_default=True, type=COUNT)
@ARCH
@click.option("--trust-pickle", is_flag=True, help="Allow loading a pickled nn.Module.")
@click.option("--input-shape", help="Input shape without batch, e.g. 1,28,28.")
@click.option("--max-burst", default=1, show_default=True, type=click.IntRange(min=1),
              help="Most spikes a neuron may send per step (graded spikes, loihi2).")
@click.option("--granularity", type=click.Choice(["channel", "layer"]), default="channel",
              show_default=True, help="Thresholds per output channel or per layer.")
@click.option("--dual-threshold", is_flag=True,
              help="Neurons may retract sent spikes with negative spikes (loihi2).")
@ALLOW_SATURATION
@click.option("--no-capacity-check", is_flag=True,
              help="Compile a network the target's cores cannot hold (reported, not refused).")
@click.option("--stop-after", help="Stop after this pass (see --list-passes).")
@click.option("--dump-dir", type=PATH, help="Write the graph after each pass here.")
@click.option("--list-passes", is_flag=True, is_eager=True, expose_value=False,
              callback=_list_passes, help="Print the pass pipeline and exit.")
@click.option("-o", "--output", type=PATH, help="Output .nir (default: MODEL.nir).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@MEMORY_BUDGET
def compile_cmd(model, target, method, calib, calib_samples, seed, timesteps, arch, trust_pickle,
                input_shape, max_burst, granularity, dual_threshold, allow_saturation,
                no_capacity_check, stop_after, dump_dir, output, as_json, memory_budget) -> None:
    """Compile MODEL (TorchScript, .pt2 export, or state dict) into a quantized SNN (.nir)."""
    from neurodeploy import api

    out = Path(output) if output else Path(model).with_suffix(".nir")
    output_file(out, inputs=[model, calib, target])
    if dump_dir:
        output_dir(dump_dir, inputs=[model, calib, target])
    result = api.compile(model, target=target, method=method, calib=calib,
                         calib_samples=calib_samples, timesteps=timesteps, arch=arch,
                         trust_pickle=trust_pickle, input_shape=_shape(input_shape),
                         options=api.ConvertOptions(max_burst=max_burst, dual=dual_threshold,
                                                    per_channel=granularity == "channel"),
                         allow_saturation=allow_saturation,
                         capacity_check=not no_capacity_check, stop_after=stop_after,
                         dump_dir=dump_dir, seed=seed, memory_budget=_budget(memory_budget))
    api.save(result.graph, out)
    _print_summary(result.summary(out), as_json)


@main.command(name="import")
@click.argument("model", type=PATH)
@click.option("--target", default="loihi2", show_default=True, help="Target name or .toml path.")
@click.option("--dt", type=float, required=True,
              help="Time step that discretizes NIR's neurons (the exporting tool's; "
                   "snnTorch: 1e-4).")
@click.option("--timesteps", "-T", default=4, show_default=True, type=COUNT)
@click.option("--reset", type=click.Choice(["zero", "subtract"]), default="zero",
              show_default=True, help="NIR's reset to v_reset = 0, or reset by subtraction "
                                      "(for tools that subtract but export v_reset = 0).")
@click.option("--events", is_flag=True,
              help="Inputs are event counts or spikes (one input integer is one event), "
                   "not values in [0, 1].")
@ALLOW_SATURATION
@click.option("--no-capacity-check", is_flag=True,
              help="Import a network the target's cores cannot hold (reported, not refused).")
@click.option("-o", "--output", type=PATH,
              help="Output .nir (default: MODEL.TARGET.nir).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def import_cmd(model, target, dt, timesteps, reset, events, allow_saturation,
               no_capacity_check, output, as_json) -> None:
    """Import MODEL, a NIR file written by another tool, and quantize it for a target; prints
    what the target cannot express exactly and the error it introduces."""
    from neurodeploy import api

    if output:
        output_file(output, inputs=[model, target])
    result = api.import_nir(model, target=target, dt=dt, timesteps=timesteps, reset=reset,
                            events=events, allow_saturation=allow_saturation,
                            capacity_check=not no_capacity_check)
    out = Path(output) if output else Path(model).with_suffix(f".{result.target.name}.nir")
    api.save(result.graph, out)
    _print_summary(result.summary(out), as_json)


@main.command(name="export")
@click.argument("network", type=PATH)
@click.option("--flavor", type=click.Choice(["standard", "netx"]), required=True,
              help="standard: plain NIR (float weights, IF nodes) for other NIR tools; "
                   "netx: lava-dl netx HDF5 for lava.lib.dl.netx.hdf5.Network.")
@click.option("-o", "--output", type=PATH,
              help="Output file (default: NETWORK.standard.nir or NETWORK.net).")
def export(network, flavor, output) -> None:
    """Export a compiled NETWORK for other tools; warns about everything the other format
    cannot express and what the other tool will therefore compute differently."""
    from neurodeploy import api

    deployment = api.load(network)
    out = Path(output) if output else Path(network).with_suffix(api.EXPORT_SUFFIXES[flavor])
    output_file(out, inputs=[network])
    for warning in deployment.export(out, flavor):
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {out} ({flavor})")


@main.command()
@click.argument("model", type=PATH)
@click.option("--method", required=True, type=click.Choice(["ecl", "qcfs", "dual_phase"]),
              help="The conversion method to train for (see docs/methods.md).")
@click.option("--dataset", default="digits", show_default=True,
              help="digits, fashion-mnist, or an .npz file with x and y (train split).")
@click.option("--epochs", default=5, show_default=True, type=COUNT)
@click.option("--timesteps", "-T", type=COUNT,
              help="The window T you will compile for: the clips get T levels (default 4).")
@click.option("--levels", type=COUNT,
              help="Quantization steps of each clip, instead of T (e.g. T x max burst for "
                   "burst spikes; docs/methods.md).")
@click.option("--no-distill", is_flag=True,
              help="Train on the labels alone, not distilled from MODEL itself.")
@click.option("--distill-activations", default=0.0, show_default=True, type=float,
              help="Weight of matching MODEL's activations layer by layer (0: logits only).")
@click.option("--lr", default=1e-3, show_default=True, type=float)
@click.option("--batch", default=128, show_default=True, type=COUNT)
@click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default="adam",
              show_default=True)
@click.option("--flip", is_flag=True, help="Mirror half of each batch (clothing images).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@ARCH
@click.option("--trust-pickle", is_flag=True, help="Allow loading a pickled nn.Module.")
@click.option("--input-shape", help="Input shape without batch, e.g. 1,28,28.")
@click.option("-o", "--output", type=PATH, required=True,
              help="The fine-tuned model (TorchScript) to write.")
def finetune(model, method, dataset, epochs, timesteps, levels, no_distill, distill_activations,
             lr, batch, optimizer, flip, seed, arch, trust_pickle, input_shape, output) -> None:
    """Fine-tune a trained MODEL for a trained conversion method; writes TorchScript."""
    from neurodeploy.distill import Distillation
    from neurodeploy.train import TrainConfig, finetune, save_torchscript

    output_file(output, inputs=[model, dataset])
    config = TrainConfig(epochs=epochs, lr=lr, batch=batch, optimizer=optimizer, flip=flip,
                         seed=seed)
    distill = None if no_distill else Distillation(activations=distill_activations)
    result = finetune(model, method=method, dataset=dataset, levels=levels,
                      timesteps=timesteps, config=config, distill=distill, arch=arch,
                      trust_pickle=trust_pickle, input_shape=_shape(input_shape), log=click.echo)
    save_torchscript(result.model, output, result.input_shape)
    click.echo(f"accuracy on {result.tested_on}: original {100 * result.start_accuracy:.2f}%, "
               f"fine-tuned {100 * result.test_accuracy:.2f}% ({result.levels} levels) after "
               f"{result.history.seconds:.0f} s; written {output}")


@main.command()
@click.argument("model", type=PATH)
@ARCH
@click.option("--trust-pickle", is_flag=True, help="Allow loading a pickled nn.Module.")
@click.option("--input-shape", help="Input shape without batch, e.g. 1,28,28.")
@click.option("--json", "as_json", is_flag=True, help="Print the mapping as JSON.")
def check(model, arch, trust_pickle, input_shape, as_json) -> None:
    """List how every node of MODEL maps to the spiking network, without compiling; exit 2
    if any node does not map (each is listed with a hint)."""
    from neurodeploy.check import check_model

    result = check_model(model, arch=arch, trust_pickle=trust_pickle,
                         input_shape=_shape(input_shape))
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        width = max(len(n.name) for n in result.nodes)
        for n in result.nodes:
            shape = "x".join(map(str, n.shape)) or "-"
            click.echo(f"{n.name:<{width}}  {n.op or '?':<18} {shape:>10}  {n.maps_to}")
        for n in result.unsupported:
            click.echo(f"error: {n.problem}", err=True)
    if result.unsupported:
        sys.exit(2)
    if not as_json:
        click.echo(f"{model}: all {len(result.nodes)} nodes map to the spiking network")


@main.command()
@click.argument("network", type=PATH)
@click.option("--dataset", default="digits", show_default=True,
              help="digits, fashion-mnist, or an .npz file with x and y.")
@click.option("--timesteps", "-T", help="Windows, e.g. 1,2,4,8 (default: powers of two up "
              "to twice the compiled T, and T itself, as far as the network can run).")
@click.option("--backend", default="reference", show_default=True)
@click.option("--limit", type=COUNT, help="Evaluate only the first N test samples.")
@click.option("--ann", "ann_model", type=PATH,
              help="The float model, to print its accuracy as the first row.")
@ARCH
@click.option("--adaptive-timesteps", is_flag=True,
              help="Early exit (compiled with +iat): accuracy and mean timesteps per sample.")
@click.option("--json", "as_json", is_flag=True)
@MEMORY_BUDGET
@WORKERS
@ADDRESS
def evaluate(network, dataset, timesteps, backend, limit, ann_model, arch, adaptive_timesteps,
             as_json, memory_budget, workers, address) -> None:
    """Accuracy of a compiled NETWORK for several window lengths T."""
    from dataclasses import asdict

    from neurodeploy import api

    budget, shards = _budget(memory_budget), _workers(workers, address)
    if adaptive_timesteps and shards.distributed:
        raise InputError("--adaptive-timesteps runs in one process; drop --workers/--address")
    if adaptive_timesteps and timesteps:
        raise InputError("--adaptive-timesteps runs the compiled window, with its early exit; "
                         "drop --timesteps")
    deployment = api.load(network)
    meta = deployment.meta
    x, y = _test_data(dataset, limit, deployment)
    steps = _int_list(timesteps) if timesteps else None
    result = {"dataset": dataset, "samples": len(x), "backend": backend,
              "compiled_timesteps": meta.timesteps,
              "window_specific": api.window_specific(deployment.graph)}
    if adaptive_timesteps:
        result["adaptive"] = asdict(deployment.evaluate_adaptive(x, y, backend=backend,
                                                                 memory_budget=budget))
    else:
        result["snn_accuracy"] = deployment.evaluate(x, y, steps, backend=backend,
                                                     memory_budget=budget, workers=shards)
    if ann_model:
        result["ann_accuracy"] = deployment.ann_accuracy(x, y, ann=ann_model, arch=arch)
    _warn_saturation(meta.safe_timesteps, steps or [])  # after the run: an error stays one line
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{dataset}: {len(x)} samples, backend {backend}")
    click.echo(f"{'network':<12} {'T':>4} {'accuracy':>9}")
    if "ann_accuracy" in result:
        click.echo(f"{'ANN (float)':<12} {'-':>4} {100 * result['ann_accuracy']:>8.2f}%")
    if adaptive_timesteps:
        adaptive = result["adaptive"]
        click.echo(f"{'SNN (int)':<12} {adaptive['timesteps']:>4} "
                   f"{100 * adaptive['full_accuracy']:>8.2f}%")
        click.echo(f"{'SNN early exit':<12} {adaptive['mean_timesteps']:>4.2f} "
                   f"{100 * adaptive['accuracy']:>8.2f}%  (mean timesteps; exits per step "
                   f"{adaptive['exits']})")
        return
    for t, acc in result["snn_accuracy"].items():
        click.echo(f"{'SNN (int)':<12} {t:>4} {100 * acc:>8.2f}%"
                   + ("  (compiled)" if t == meta.timesteps else ""))
    if result["window_specific"] and set(result["snn_accuracy"]) != {meta.timesteps}:
        click.echo(f"note: method '{meta.method}' calibrated this network for "
                   f"T={meta.timesteps}; the other windows run it as it is (compile one per T to "
                   "compare windows)")


@main.command()
@click.argument("network", type=PATH)
@click.option("--input", "input_path", required=True, type=PATH,
              help=".npy with one sample or a batch; floats in [0, 1] or integers.")
@WINDOW
@click.option("--backend", default="reference", show_default=True)
@click.option("--out", type=PATH, help="Write the full trace (.npz), streamed chunk by chunk.")
@click.option("--json", "as_json", is_flag=True)
@MEMORY_BUDGET
def simulate(network, input_path, timesteps, backend, out, as_json, memory_budget) -> None:
    """Run NETWORK on inputs and print predictions; optionally save every spike and membrane."""
    from neurodeploy import api

    if out:
        output_file(out, inputs=[network, input_path], suffix=".npz")
    budget = _budget(memory_budget)
    deployment = api.load(network)
    x = load_samples(input_path)
    steps = timesteps or deployment.meta.timesteps
    if out:  # every step of every sample, written chunk by chunk
        outputs, spike_events = deployment.simulate_to_file(x, out, steps, backend=backend,
                                                            memory_budget=budget)
    else:  # chunks, keeping only the readout and spike counts
        outputs, spike_events = deployment.predict(x, steps, backend=backend,
                                                   memory_budget=budget)
    _warn_saturation(deployment.meta.safe_timesteps, [steps])  # after the run, as in evaluate
    if as_json:
        click.echo(json.dumps({
            "samples": len(outputs), "timesteps": steps, "backend": backend,
            "spike_events": {pop: int(e.sum()) for pop, e in spike_events.items()},
            "predictions": outputs.argmax(axis=1).tolist(), "trace": out}, indent=2))
        return
    click.echo(f"{len(outputs)} sample(s), T={steps}, backend {backend}")
    for pop, events in spike_events.items():
        click.echo(f"  {pop:<24} {int(events.sum()):>10} spike events")
    click.echo(f"predictions: {outputs.argmax(axis=1).tolist()}")
    if out:
        click.echo(f"trace written to {out}")


@main.command()
@click.argument("network", type=PATH)
@click.option("--dataset", help="digits, fashion-mnist, .npz, or .npy of inputs as simulate "
              "--input takes them (default: random inputs).")
@click.option("--samples", default=5, show_default=True, type=COUNT)
@WINDOW
@click.option("--backend", default="lava", show_default=True, help="Backend to check.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="For random inputs.")
@click.option("--trace-dir", type=PATH,
              help="Where both traces are written when they differ (default: the current "
                   "directory).")
@click.option("--junit-xml", type=PATH,
              help="Also write a JUnit XML report (one test case per sample) for CI.")
@click.option("--json", "as_json", is_flag=True)
@WORKERS
@ADDRESS
def verify(network, dataset, samples, timesteps, backend, seed, trace_dir, junit_xml,
           as_json, workers, address) -> None:
    """Check that BACKEND matches the reference simulator bit for bit (exit 1 if not)."""
    from dataclasses import asdict

    from neurodeploy import api
    from neurodeploy.simulation import as_batch
    from neurodeploy.testing import write_junit

    if trace_dir:
        output_dir(trace_dir, inputs=[network])
    if junit_xml:
        output_file(junit_xml, inputs=[network])
    shards = _workers(workers, address)
    deployment = api.load(network)
    if dataset and dataset.endswith(".npy"):  # inputs, read and checked as simulate reads them
        x = as_batch(deployment.graph, load_samples(dataset))[:samples]
    else:
        x = (load_dataset(dataset, limit=samples)[0] if dataset  # no labels needed
             else deployment.random_inputs(samples, seed))
    result = deployment.verify(x, backend=backend, timesteps=timesteps, workers=shards)
    report = asdict(result.comparison) | {"backend": backend, "bit_exact": result.bit_exact}
    if junit_xml:
        write_junit(result, junit_xml, str(network))
    if not result.bit_exact:
        try:
            report["traces"] = [str(p) for p in result.save_traces(trace_dir or ".",
                                                                   Path(network).stem)]
        except NeurodeployError as err:  # the mismatch is the news; traces are its evidence
            report["traces_error"] = str(err)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    elif not result.bit_exact:
        click.echo(str(result), err=True)
        click.echo(f"traces written to {report['traces'][0]} and {report['traces'][1]}"
                   if "traces" in report else f"traces not written: {report['traces_error']}",
                   err=True)
    else:
        click.echo(str(result))
    sys.exit(0 if result.bit_exact else 1)


@main.command()
@click.argument("network", type=PATH)
@click.option("--dataset", default="digits", show_default=True,
              help="digits, fashion-mnist, or an .npz file with x and y (test split).")
@click.option("--samples", default=256, show_default=True, type=COUNT,
              help="Measure on the first N test samples.")
@click.option("--timesteps", "-T", help="Windows of the accuracy sweep, e.g. 1,2,4,8 "
              "(default: powers of two up to twice the compiled T, as far as the network can "
              "run; T itself is always included).")
@click.option("--ann", "ann_model", type=PATH,
              help="The float model, to compare the SNN with (default: the rate network "
                   "rebuilt from the compiled weights; see docs/report.md).")
@ARCH
@click.option("--target", help="Target name or .toml path, when the compiled target's name is "
                               "not a shipped target.")
@click.option("-o", "--output", type=PATH,
              help="Directory for report.json, report.md and the plots (default: "
                   "NETWORK_report/).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@MEMORY_BUDGET
def report(network, dataset, samples, timesteps, ann_model, arch, target, output, as_json,
           memory_budget) -> None:
    """Deployment report of a compiled NETWORK: per-layer diagnostics, capacity, operations
    and energy, plots."""
    from neurodeploy import api

    directory = Path(output) if output else Path(network).with_name(
        f"{Path(network).stem}_report")
    output_dir(directory, inputs=[network, dataset, ann_model, target])
    deployment = api.load(network, target=target)
    steps = _int_list(timesteps) if timesteps else None
    budget = _budget(memory_budget)
    x, y = _test_data(dataset, samples, deployment)
    result = deployment.report(x, y, ann=ann_model, arch=arch, timesteps=steps,
                               network=str(network), dataset=dataset, memory_budget=budget)
    written = result.write(directory)
    click.echo(json.dumps(result.data, indent=2) if as_json else
               f"{result.text}\nwritten: {', '.join(str(p) for p in written)}")


def _test_data(dataset: str, limit: int | None, deployment) -> tuple:
    """--dataset's images and labels. The default (digits) is refused up front on a network
    it cannot run: the error would otherwise be about data the user never gave."""
    from click.core import ParameterSource

    from neurodeploy import api
    from neurodeploy.core.graph import num_outputs

    x, y = api.dataset(dataset, limit=limit)
    if click.get_current_context().get_parameter_source("dataset") != ParameterSource.DEFAULT:
        return x, y
    shape, classes = deployment.input_shape, num_outputs(deployment.graph)
    if math.prod(shape) != math.prod(x.shape[1:]) or classes <= int(y.max()):
        raise InputError(f"the default --dataset {dataset} ({math.prod(x.shape[1:])} values an "
                         f"image, {int(y.max()) + 1} classes) does not fit this network, which "
                         f"takes inputs of shape {shape} and has {classes} outputs",
                         hint="Give its test data: --dataset fashion-mnist or an .npz file "
                              "with x and y")
    return x, y


def run() -> None:
    """The console script's entry point (``cli_errors.run_process``)."""
    run_process(main)


if __name__ == "__main__":
    run()
