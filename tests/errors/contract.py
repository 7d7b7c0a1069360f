"""The outcome contract of one CLI run, checked the same way by the regression tests and the
fuzz suite (and by any new fuzzing, e.g. of mutated .nir files: build the files in a
``Workspace``, then call ``run_case``).

Every run ends in exit 0 (or another code the command documents, e.g. verify's 1) with its
result, or in exit 2 with exactly one ``error:`` line on stderr; never a traceback, never a
changed file other than the outputs it was asked to replace (and never one of its inputs),
never a temp file left behind, and no new file after a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result

from neurodeploy.cli import main

OUTPUT_OPTIONS = ("-o", "--output", "--out")


@dataclass
class Workspace:
    """A directory of input files that every case may read and none may change."""

    directory: Path

    def snapshot(self) -> dict[Path, bytes | None]:
        """Every file's content; None for a directory."""
        return {p: None if p.is_dir() else p.read_bytes()
                for p in self.directory.rglob("*") if p.is_dir() or p.is_file()}


def run_case(argv: Sequence[str], workspace: Workspace, *, allowed: Iterable[int] = (0, 2),
             keep_outputs: bool = False, kept_on_failure: Iterable[str] = ()) -> Result:
    """Run ``neurodeploy *argv`` in the workspace directory, in-process, and assert the
    contract; new files are removed afterwards (unless ``keep_outputs``) so the next case
    starts from the same files. A successful run may replace an existing file named after
    -o/--output/--out, unless the same name is also one of its other arguments (an input).
    ``kept_on_failure``: directories (relative to the workspace) whose new files may stay
    after a failure, such as --dump-dir's graphs of the passes that ran."""
    before = workspace.snapshot()
    with contextlib.chdir(workspace.directory):
        result = CliRunner().invoke(main, fast_method(argv))
    case = f"neurodeploy {' '.join(map(str, argv))}"
    assert result.exit_code in set(allowed), (case, result.exit_code, result.stderr,
                                              result.exception)
    assert "Traceback" not in result.stderr + result.stdout, (case, result.stderr)
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (case, result.stderr)
    after = workspace.snapshot()
    replaceable = _replaceable(argv, workspace.directory) if result.exit_code == 0 else set()
    changed = [p for p, content in before.items()
               if after.get(p, b"") != content and p not in replaceable]
    assert not changed, (case, "changed or removed files", changed)
    new = sorted(p for p in after if p not in before)
    assert not [p for p in new if p.name.startswith(".")], (case, "temp files left", new)
    if result.exit_code == 2:
        kept = [workspace.directory / name for name in kept_on_failure]
        left = [p for p in new if not any(p == k or k in p.parents for k in kept)]
        assert not left, (case, "a failed run left files", left)
    if not keep_outputs:
        for path in reversed(new):  # files before the directories holding them
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return result


def _replaceable(argv: Sequence[str], directory: Path) -> set[Path]:
    named = [argv[i + 1] for i in range(len(argv) - 1) if argv[i] in OUTPUT_OPTIONS]
    others = [a for i, a in enumerate(argv) if not (i > 0 and argv[i - 1] in OUTPUT_OPTIONS)]
    return {Path(os.path.realpath(directory / out)) for out in named if out not in others}


def fast_method(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--method p99.99`` for a compile that names no method: the error
    contract does not depend on the method, and the default (auto) calibrates for minutes."""
    argv = list(argv)
    if argv[:1] == ["compile"] and "--method" not in argv:
        argv += ["--method", "p99.99"]
    return argv
