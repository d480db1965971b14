"""HDF5 storage of trajectories: exact round trip, atomic writes."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from .activations import Activation
from .problem import Problem
from .targets import Target
from .trajectory import KERNELS, OBSERVABLES, Trajectory

__all__ = ["save", "load", "write_group", "read_group", "atomic_path", "atomic_h5file"]

FORMAT_VERSION = 1


class atomic_path:
    """Context manager yielding a temporary path next to ``path``, renamed onto it on success.

    The temporary file is ``.<name>.<random>.tmp`` in the destination directory (same file
    system, so ``os.replace`` is atomic), created empty with permissions ``0o666 & ~umask``.
    On success it is fsync'ed and renamed onto ``path``; on an exception it is removed and the
    destination is untouched. A process killed part-way leaves the destination untouched and
    the hidden temporary file behind (safe to delete).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_path(out) as tmp:
    ...     _ = tmp.write_text("complete or absent")
    >>> out.read_text()
    'complete or absent'
    """

    def __init__(self, path) -> None:
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            tmp = self.path.parent / f".{self.path.name}.{secrets.token_hex(6)}.tmp"
            try:
                # not tempfile.mkstemp: its mode 0o600 would carry over to the destination
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            except FileExistsError:
                continue
            self.tmp = tmp
            return tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                fd = os.open(self.tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)  # the data reach the disk before the name does
                finally:
                    os.close(fd)
                os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)  # no-op after a successful replace


@contextmanager
def atomic_h5file(path) -> Iterator[h5py.File]:
    """Yield an HDF5 file open for writing that appears at ``path`` only if the block succeeds.

    The file is written under a temporary name in the destination directory and renamed onto
    ``path`` (:class:`atomic_path`): an exception during the write leaves the old file (or no
    file) and no temporary file.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "data.h5"
    >>> with atomic_h5file(out) as f:
    ...     f["x"] = [1.0, 2.0]
    >>> with h5py.File(out, "r") as f:
    ...     f["x"][()].tolist()
    [1.0, 2.0]
    """
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        yield f


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return str(obj)


def write_group(group: h5py.Group, traj: Trajectory) -> None:
    """Write one trajectory into an open HDF5 group."""
    group.attrs["format"] = "dmft.Trajectory"
    group.attrs["format_version"] = FORMAT_VERSION
    group.attrs["problem"] = json.dumps(traj.problem.to_dict())
    group.attrs["provenance"] = json.dumps(traj.provenance, default=_json_default)
    for name in OBSERVABLES:
        group.create_dataset(name, data=getattr(traj, name))
        group.create_dataset(name + "_se", data=getattr(traj, name + "_se"))
    for name in KERNELS + tuple(k + "_se" for k in KERNELS):
        val = getattr(traj, name)
        if val is not None:
            group.create_dataset(name, data=val)
    diag = group.create_group("diagnostics")
    for key, val in traj.diagnostics.items():
        if "/" in str(key):
            raise ValueError(f"diagnostics key {key!r} must not contain '/' (an HDF5 path)")
        try:
            arr = np.asarray(val)
        except ValueError:  # ragged nested sequences: stored as JSON
            arr = np.asarray(None)
        if arr.dtype.kind in "fiub":
            diag.create_dataset(key, data=arr)
        else:
            diag.attrs[key] = json.dumps(val, default=_json_default)


def read_group(group: h5py.Group, *, target: Target | None = None,
               activation: Activation | None = None) -> Trajectory:
    """Read a trajectory written by :func:`write_group`."""
    if group.attrs.get("format") != "dmft.Trajectory":
        raise ValueError(f"HDF5 group {group.name!r} does not hold a dmft.Trajectory")
    pdict = json.loads(group.attrs["problem"])
    # a user object passed for the wrong file would otherwise be attached silently
    for field_name, given in (("target", target), ("activation", activation)):
        if given is not None and given.name != pdict[field_name]:
            raise ValueError(
                f"{field_name}={given.name!r} was passed to load, but {group.name!r} was written "
                f"with {field_name} {pdict[field_name]!r}"
            )
    try:
        problem = Problem.from_dict(pdict, target=target, activation=activation)
    except ValueError as exc:
        raise ValueError(
            f"cannot rebuild the problem stored in {group.name!r} ({exc}); for a user-defined "
            "target or activation pass target=... / activation=... to dmft.load"
        ) from None
    kw = {name: group[name][()] for name in group if isinstance(group[name], h5py.Dataset)}
    diagnostics = {}
    if "diagnostics" in group:
        dg = group["diagnostics"]
        diagnostics = {k: dg[k][()] for k in dg}
        diagnostics.update({k: json.loads(v) for k, v in dg.attrs.items()})
    return Trajectory(problem=problem, provenance=json.loads(group.attrs["provenance"]),
                      diagnostics=diagnostics, **kw)


def save(traj: Trajectory, path) -> None:
    """Write ``traj`` to the HDF5 file ``path`` (temporary file, then ``os.replace``)."""
    with atomic_h5file(path) as f:
        write_group(f, traj)


def load(path, *, target: Target | None = None, activation: Activation | None = None) -> Trajectory:
    """Read a trajectory saved by :meth:`Trajectory.save`.

    Parameters
    ----------
    path : str or Path
    target, activation : optional
        Needed only when the problem used a user-defined target or activation (those are stored
        by name and cannot be rebuilt from the file alone).
    """
    with h5py.File(path, "r") as f:
        return read_group(f, target=target, activation=activation)
