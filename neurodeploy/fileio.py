"""Output files: one policy for every command that writes, so no run can damage a file.

Checked before any work starts (``output_file``, ``output_dir``) and again when writing:

- an output may not be one of the command's inputs (also not through a link);
- only a regular file is ever replaced: a directory, a device (``/dev/null``), a socket or a
  FIFO at the output path is refused;
- a symbolic link at the output path is written through: the file it points to is replaced
  and the link stays a link;
- the directory must be writable (or creatable).

``write_files`` writes each file to a temp file beside it, ``.NAME.<random>SUFFIX`` (the
final name's suffix, so a writer sees the name it expects), then renames it over the target:
a failed or interrupted run leaves an existing file as it was and no partial file, and removes
the directories it created. Modes follow the umask like any tool's output (a new file gets
0666 & ~umask); a replaced file keeps its mode.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from neurodeploy.errors import InputError

Writer = Callable[[str], None]  #: writes the content to the path it is given
PathLike = str | os.PathLike


def output_file(path: PathLike, *, inputs: Iterable[PathLike | None] = (),
                suffix: str | None = None) -> Path:
    """Refuse ``path`` as an output file if the policy above forbids it; returns the file
    that will be written (a link's target). ``suffix``: the name must end with it."""
    if suffix and not str(path).endswith(suffix):
        raise InputError(f"{path}: the file name must end in {suffix}",
                         hint=f"Give a name such as {Path(path).stem}{suffix}")
    target, mode = _checked(path, inputs)
    if mode is not None and stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory", hint="Give a file name")
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(f"{path}: is not a regular file (a device, socket or FIFO); "
                         "refusing to replace it")
    _check_writable(target.parent, path)
    return target


def output_dir(path: PathLike, *, inputs: Iterable[PathLike | None] = ()) -> Path:
    """Refuse ``path`` as an output directory (an existing file, an input, not writable)."""
    target, mode = _checked(path, inputs)
    if mode is not None and not stat.S_ISDIR(mode):
        raise InputError(f"{path}: exists and is not a directory")
    _check_writable(target, path)
    return target


def atomic_write(path: PathLike, write: Writer) -> None:
    """Write one file by the policy above (see ``write_files``)."""
    write_files({path: write})


def via_memory(fill: Callable[[io.BytesIO], None]) -> Writer:
    """A writer that builds the file in memory (``fill`` writes to a buffer, as h5py and
    torch can) and then writes its bytes plainly: HDF5 writing straight to a full disk raises
    an untyped error or crashes the process, a plain write raises OSError."""
    def write(tmp: str) -> None:
        buffer = io.BytesIO()
        fill(buffer)
        Path(tmp).write_bytes(buffer.getbuffer())
    return write


@contextlib.contextmanager
def scratch_dir(path: PathLike) -> Iterator[Path]:
    """A temporary directory on the file system ``path`` will be written to (in its nearest
    existing directory), for a file made from parts too large to hold in memory; removed on
    exit. Failing to write the parts (a full disk) is the output's error."""
    target = Path(os.path.realpath(path)).parent
    existing = next(d for d in (target, *target.parents) if d.is_dir())
    try:
        scratch = tempfile.TemporaryDirectory(prefix=f".{Path(path).name}.", dir=existing)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    with scratch:
        try:
            yield Path(scratch.name)
        except OSError as exc:  # the parts are written here, outside write_files
            raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def write_files(files: Mapping[PathLike, Writer]) -> None:
    """Call each writer on a temp file beside its target, then rename them all over their
    targets; on any failure remove the temp files and the directories created for them."""
    targets = [(output_file(path), write) for path, write in files.items()]
    created: list[Path] = []
    temps: list[tuple[str, Path]] = []
    current = Path()  # the file being written, for the error message
    try:
        for current, write in targets:
            created += _make_dirs(current.parent)
            fd, tmp = tempfile.mkstemp(prefix=f".{current.name}.",
                                       suffix=current.suffix or ".tmp", dir=current.parent)
            os.close(fd)
            temps.append((tmp, current))
            write(tmp)
            os.chmod(tmp, _new_mode(current))
        for tmp, current in temps:
            os.replace(tmp, current)
    except BaseException as exc:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        for directory in reversed(created):
            with contextlib.suppress(OSError):  # not empty: something else was put there
                directory.rmdir()
        if isinstance(exc, OSError):
            raise InputError(f"{current}: cannot write ({exc.strerror or exc})") from None
        raise


def file_path(path: object, name: str = "path") -> Path:
    """``path`` as a Path: a string or path object, not empty (``Path("")`` is the current
    directory, which no caller means)."""
    if not isinstance(path, PathLike) or not os.fspath(path):
        raise InputError(f"{name} must be a file path, got {path!r}")
    return Path(path)


def _checked(path: PathLike, inputs: Iterable[PathLike | None]) -> tuple[Path, int | None]:
    """The real path to write and its ``_mode``, refusing an output that is one of ``inputs``."""
    target = Path(os.path.realpath(file_path(path)))
    mode = _mode(target, path)
    for given in inputs:
        if given is not None and os.path.exists(given) and (
                Path(os.path.realpath(given)) == target
                or (mode is not None and os.path.samefile(given, target))):
            raise InputError(f"{path}: is also an input of this command ({given}); writing it "
                             "would destroy the input", hint="Give another output path")
    return target, mode


def _check_writable(directory: Path, path: PathLike) -> None:
    """The nearest existing ancestor must be a directory this process may write in."""
    existing = next(d for d in (directory, *directory.parents) if _mode(d, path) is not None)
    if not existing.is_dir():
        raise InputError(f"{path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write in {existing} (permission denied or a "
                         "read-only file system)")


def _make_dirs(directory: Path) -> list[Path]:
    """Create ``directory`` and missing parents; returns those created, outermost first."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for d in reversed(missing):
        d.mkdir()
    return missing[::-1]


def _mode(path: Path, given: PathLike) -> int | None:
    """``st_mode`` of ``path``, None if nothing is there; other failures name ``given``."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # _check_writable names the file in the way
        return None
    except OSError as exc:  # a name too long, a loop of links
        raise InputError(f"{given}: {exc.strerror}") from None


def _new_mode(target: Path) -> int:
    """A replaced file keeps its mode; a new one gets what the umask leaves of 0666."""
    if target.exists():
        return stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0o022)  # the only portable way to read it is to set it
    os.umask(umask)
    return 0o666 & ~umask
