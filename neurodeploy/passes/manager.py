"""Run a pipeline of passes: run, check, time, and record it in the artifact."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import nir

from neurodeploy.core.meta import get_graph_meta, set_graph_meta
from neurodeploy.errors import InputError
from neurodeploy.passes.base import PassContext
from neurodeploy.passes.registry import PASSES


def run_pipeline(graph: nir.NIRGraph, names: Sequence[str], ctx: PassContext, *,
                 stop_after: str | None = None, dump_dir: str | Path | None = None
                 ) -> nir.NIRGraph:
    """Run ``names`` in order. After each pass: NIR type check, metadata check (reading
    the graph metadata back), the pass's ``ctx.notes`` copied into ``GraphMeta.notes`` (so the
    artifact says what each pass changed), and ``dump_dir/NN_<pass>.nir``."""
    unknown = [n for n in names if n not in PASSES]
    if unknown or (stop_after is not None and stop_after not in names):
        bad = unknown[0] if unknown else stop_after
        raise InputError(f"unknown pass '{bad}'", hint=f"Passes: {', '.join(names)}")
    for index, name in enumerate(names, start=1):
        start = time.perf_counter()
        graph = PASSES[name](graph, ctx)
        seconds = time.perf_counter() - start
        graph.check_types()
        meta = get_graph_meta(graph)
        notes = {name: ctx.notes[name]} if name in ctx.notes else {}
        set_graph_meta(graph, dataclasses.replace(
            meta, pipeline=[*meta.pipeline, name],
            pass_seconds={**meta.pass_seconds, name: round(seconds, 6)},
            notes={**meta.notes, **notes}))
        if dump_dir:
            from neurodeploy.nir_io import write

            write(graph, Path(dump_dir) / f"{index:02d}_{name}.nir")
        if name == stop_after:
            break
    return graph
