"""HDF5 storage of trajectories: exact round trip, atomic writes."""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import sys
import tempfile
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

    An exception (or a kill) before the rename leaves the destination untouched.
    """

    def __init__(self, path) -> None:
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


_AT_FDCWD = -100  # linkat(2) constants (Linux)
_AT_SYMLINK_FOLLOW = 0x400


def _open_anonymous(directory: Path):
    """A binary file object on an unnamed file in ``directory`` (Linux O_TMPFILE), else None.

    The kernel frees an unnamed file when its process dies, so a write killed part-way leaves
    nothing behind, unlike a named temporary file.
    """
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not sys.platform.startswith("linux"):
        return None
    try:
        fd = os.open(directory, flag | os.O_RDWR, 0o666)
    except OSError:  # file system without O_TMPFILE support
        return None
    return os.fdopen(fd, "w+b")


def _link_anonymous(fobj, dest: Path) -> None:
    """Give the unnamed file behind ``fobj`` the name ``dest`` (which must not exist)."""
    libc = ctypes.CDLL(None, use_errno=True)
    src = f"/proc/self/fd/{fobj.fileno()}".encode()
    if libc.linkat(_AT_FDCWD, src, _AT_FDCWD, os.fsencode(dest), _AT_SYMLINK_FOLLOW) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(dest))


@contextmanager
def atomic_h5file(path) -> Iterator[h5py.File]:
    """Yield an HDF5 file open for writing that appears at ``path`` only if the block succeeds.

    On Linux the data go to an unnamed file (O_TMPFILE) in the destination directory, which is
    fsync'ed, linked under a temporary name and renamed onto ``path`` (``os.replace``): an
    exception or even a kill during the write leaves the old file (or no file) and no temporary
    file. Elsewhere a named temporary file is used (:class:`atomic_path`); an exception removes
    it, a kill can leave it behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fobj = _open_anonymous(path.parent)
    if fobj is None:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            yield f
        return
    with fobj:
        with h5py.File(fobj, "w") as f:
            yield f
        fobj.flush()
        os.fsync(fobj.fileno())
        tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            _link_anonymous(fobj, tmp)
        except OSError:  # e.g. /proc not mounted: copy the finished file instead
            fobj.seek(0)
            with atomic_path(path) as named, open(named, "wb") as out:
                shutil.copyfileobj(fobj, out)
            return
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
