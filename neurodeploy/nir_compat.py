"""nir 1.0.8 gets ``Conv2d`` types wrong; every Conv2d neurodeploy builds, copies or reads
passes through here to be put right. Also: reading NIR files safely, and their digest.

``nir.Conv2d.__post_init__`` takes the input channels from ``weight.shape[1]`` (the channels
per group, wrong whenever ``groups > 1``) and both output sizes from ``weight.shape[2]``
(wrong for kernels that are not square), so a depthwise or 3x1 convolution fails NIR's own
type check. ``fix_conv2d_types`` recomputes both from the whole kernel shape and ``groups``.
It is applied to neurodeploy's own nodes only (``conv2d_node``, ``replace_node``, ``read``):
patching ``nir.Conv2d`` itself would change nir for every other library in the same process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
from pathlib import Path
from typing import Any, TypeVar

import h5py
import nir
import numpy as np
from nir.ir.utils import calculate_conv_output

from neurodeploy.errors import InputError, MetadataError
from neurodeploy.fileio import file_path

Node = TypeVar("Node", bound=nir.NIRNode)


def fix_conv2d_types(node: Node) -> Node:
    """``node`` with its types right: a Conv2d's are recomputed in place, so call this only on
    a node just made that nothing else holds yet; any other node is returned as it is."""
    if isinstance(node, nir.Conv2d) and node.input_shape is not None:
        channels = int(node.weight.shape[1]) * int(node.groups)
        node.input_type = {"input": np.array([channels, *node.input_shape])}
        size = calculate_conv_output(node.input_shape, node.padding, node.dilation,
                                     tuple(node.weight.shape[2:]), node.stride)
        node.output_type = {"output": np.array([node.weight.shape[0], *size])}
    return node


def conv2d_node(**fields: Any) -> nir.Conv2d:
    """``nir.Conv2d(**fields)`` with its types right."""
    return fix_conv2d_types(nir.Conv2d(**fields))


def replace_node(node: Node, **changes: Any) -> Node:
    """``dataclasses.replace`` for NIR nodes: it re-runs nir's ``__post_init__``, so a copied
    Conv2d needs its types put right again."""
    return fix_conv2d_types(dataclasses.replace(node, **changes))


def read_file(path: str | Path) -> nir.NIRGraph:
    """A NIR file as nir reads it (``read``), any file that is not one refused in one line:
    what nir raises on a damaged file (asserts, lookups) says nothing to the user."""
    path = file_path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a .nir file")
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: not a regular file (a device, a pipe or a socket)")
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        if not h5py.is_hdf5(path):
            raise MetadataError(f"{path}: not a NIR file (not HDF5)")
        with h5py.File(path, "r") as f:
            graph_kind = f["node/type"][()] if "node/type" in f else None
            incomplete = _missing_chunks(f)
    except (OSError, RuntimeError) as exc:  # truncated, unreadable, a damaged structure
        raise MetadataError(f"{path}: unreadable NIR file ({exc})",
                            hint="The file is damaged; write it again") from None
    if incomplete is not None:
        raise MetadataError(f"{path}: damaged NIR file ('{incomplete}' has parts missing)",
                            hint="The file is damaged; write it again")
    if not (isinstance(graph_kind, bytes) and graph_kind == b"NIRGraph"):
        raise MetadataError(f"{path}: not a NIR file (an HDF5 file without a NIR graph)")
    try:
        graph = read(path)
    except Exception as exc:  # nir's reader asserts and indexes: anything it raises is damage
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise MetadataError(f"{path}: unreadable NIR file ({reason})",
                            hint="The file is damaged or written by an incompatible tool") \
            from None
    for name, node in graph.nodes.items():
        check_real_arrays(vars(node), f"{path}: node '{name}'")
    return graph


#: root attribute of a file neurodeploy wrote: the digest of every dataset in it
DIGEST = "neurodeploy_digest"


def content_digest(f: h5py.File) -> str:
    """sha256 of every dataset's name, type, shape and values, in the file's order."""
    digest = hashlib.sha256()

    def add(name: str, obj: Any) -> None:
        if not isinstance(obj, h5py.Dataset):
            return
        value = obj[()]
        data = np.ascontiguousarray(value).tobytes() \
            if isinstance(value, np.ndarray) and value.dtype.kind != "O" else \
            repr(value.tolist() if isinstance(value, np.ndarray) else value).encode()
        for part in (name.encode(), str(obj.dtype).encode(), str(obj.shape).encode(), data):
            digest.update(part)
            digest.update(b"\0")

    f.visititems(add)
    return digest.hexdigest()


def seal(buffer: Any) -> None:
    """Write the digest of a file just written (an HDF5 file object or path) into it."""
    with h5py.File(buffer, "r+") as f:
        f.attrs[DIGEST] = content_digest(f)


def check_seal(path: str | Path) -> None:
    """Refuse a file whose datasets no longer match the digest written with it: a flipped
    bit in a small record (an input shift of 0 read as 2) passes every range check and runs
    another network. A file without a digest (another tool's, an older one) is not checked."""
    with h5py.File(path, "r") as f:
        written = f.attrs.get(DIGEST)
        if written is not None and written != content_digest(f):
            raise MetadataError(f"{path}: damaged NIR file (its content does not match the "
                                "digest written with it)",
                                hint="The file is damaged or was edited; write it again")


def _missing_chunks(f: h5py.File) -> str | None:
    """The first dataset stored in chunks (compressed) that lacks some of them: HDF5 reads a
    missing chunk as zeros without a word, and one flipped bit in a chunk's index moves it
    elsewhere (gzip checks a chunk's bytes, not the index)."""
    found: list[str] = []

    def check(name: str, obj: Any) -> None:
        if found or not isinstance(obj, h5py.Dataset) or obj.chunks is None:
            return
        starts = [range(0, size, chunk) for size, chunk in
                  zip(obj.shape, obj.chunks, strict=True)]
        stored = obj.id.get_num_chunks()  # compared first: a declared size may be huge
        if stored != math.prod(map(len, starts)) or \
                {tuple(obj.id.get_chunk_info(i).chunk_offset) for i in range(stored)} != \
                set(itertools.product(*starts)):
            found.append(name)

    f.visititems(check)
    return found[0] if found else None


#: array kinds a node may hold: booleans, integers, reals; and text where NIR has text
_REAL_KINDS, _TEXT_KINDS = "biuf", "SU"
_TEXT_FIELDS = ("padding", "metadata")  #: NIR's padding may be 'same'; metadata has names


def check_real_arrays(fields: dict[str, Any], where: str, text: bool = False) -> None:
    """Refuse arrays of complex numbers, records, references or other objects (HDF5 stores
    them; numpy would drop an imaginary part or fail deep inside the arithmetic), and text
    outside the fields that hold text."""
    for key, value in fields.items():
        allowed = _REAL_KINDS + (_TEXT_KINDS if text or key in _TEXT_FIELDS else "")
        if isinstance(value, dict):
            check_real_arrays(value, where, text or key in _TEXT_FIELDS)
        elif isinstance(value, np.ndarray) and value.dtype.kind not in allowed:
            raise MetadataError(f"{where}: '{key}' holds {value.dtype} values, not real numbers",
                                hint="The file is damaged or written by an incompatible tool")


def read(path: str | Path) -> nir.NIRGraph:
    """``nir.read``, with the graph's type check run after the Conv2d types are put right (nir
    checks while it reads, on the wrong types). Nodes inside a subgraph are read as nir reads
    them."""
    raw = nir.read(path, type_check=False)
    nodes = {name: fix_conv2d_types(node) for name, node in raw.nodes.items()}
    return nir.NIRGraph(nodes, list(raw.edges), metadata=raw.metadata)
