"""HDF5 storage of trajectories: exact round trip, named dimensions, atomic writes.

A trajectory group holds one dataset per array field (``M``, ``M_se``, ..., ``C``, ``R``,
``Lam`` when present, ``physical_time``: eta * step or k dt), each with a ``description``
attribute and HDF5 dimension scales (``time``, ``unit``, ``direction``, ``unit2``,
``time2``), so netCDF readers such as ``xarray.open_dataset(path, engine="h5netcdf")`` see
named dimensions. Attributes: ``format``, ``format_version``, ``problem`` and
``provenance`` (JSON), and ``callables`` (JSON: module and qualified name of a user
target's or activation's functions, so that loading finds them). Solver diagnostics live in
the subgroup ``diagnostics``. Format version 1 (no dimension scales, no ``callables``) is
still read; files without ``physical_time`` get eta * step.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from ._callables import reference, resolve
from .activations import ACTIVATIONS, Activation
from .problem import Problem
from .targets import TARGETS, Target
from .trajectory import DESCRIPTIONS, DIMS, KERNELS, OBSERVABLES, Trajectory, json_text

__all__ = ["save", "load", "write_group", "read_group", "atomic_path", "atomic_h5file"]

FORMAT_VERSION = 2
TRAJECTORY_FORMAT = "dmft.Trajectory"
_SWEEP_FORMAT = "dmft.Sweep"  # dmft.sweep's store; named here because load points to it
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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


_ARRAYS = OBSERVABLES + tuple(k + "_se" for k in OBSERVABLES) + KERNELS + \
    tuple(k + "_se" for k in KERNELS)
_ACTIVATION_FUNCTIONS = ("sigma", "dsigma", "d2sigma")


def write_group(group: h5py.Group, traj: Trajectory) -> None:
    """Write one trajectory into an open HDF5 group (see the module docstring for the layout).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, dmft
    >>> traj = dmft.Trajectory(dmft.Problem(T=2), M=np.zeros((2, 2, 2)), Q=np.ones((2, 2, 2)),
    ...                        e_train=np.zeros(2), e_gen=np.ones(2))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "runs.h5"
    >>> with h5py.File(path, "w") as f:
    ...     write_group(f.create_group("first"), traj)
    >>> with h5py.File(path, "r") as f:
    ...     read_group(f["first"]).T
    2
    """
    group.attrs["format"] = TRAJECTORY_FORMAT
    group.attrs["format_version"] = FORMAT_VERSION
    group.attrs["problem"] = json.dumps(traj.problem.to_dict())
    group.attrs["provenance"] = json_text(traj.provenance)
    refs = _callable_references(traj.problem)
    if refs:
        group.attrs["callables"] = json.dumps(refs)
    arrays = {name: getattr(traj, name) for name in _ARRAYS if getattr(traj, name) is not None}
    used = {dim for name in arrays for dim in DIMS[name]}
    for dim, values in traj.coordinates().items():
        if dim in used:
            scale = group.create_dataset(dim, data=values)
            scale.make_scale(dim)
            scale.attrs["description"] = DESCRIPTIONS[dim]
    arrays["physical_time"] = traj.time  # absent from older files: then eta * step
    for name, values in arrays.items():
        dset = group.create_dataset(name, data=values)
        dset.attrs["description"] = DESCRIPTIONS[name]
        for axis, dim in enumerate(DIMS[name]):
            dset.dims[axis].attach_scale(group[dim])
        if name != "physical_time" and "time" in DIMS[name]:
            dset.attrs["coordinates"] = "physical_time"  # a coordinate to netCDF readers
    diag = group.create_group("diagnostics")
    for key, val in traj.diagnostics.items():
        if "/" in str(key):
            raise ValueError(f"diagnostics key {key!r} must not contain '/' (an HDF5 path)")
        try:
            arr = np.asarray(val)
        except ValueError:  # ragged nested sequences: stored as JSON
            arr = np.asarray(None)
        if arr.dtype.kind in "fiub":
            dset = diag.create_dataset(key, data=arr)
            dset.attrs["description"] = (f"solver diagnostic {key!r} of method "
                                         f"{traj.method!r}")
            _name_diagnostic_axes(group, dset, key, traj.T)
        else:
            diag.attrs[key] = json_text(val)


def _name_diagnostic_axes(group: h5py.Group, dset: h5py.Dataset, key: str, T: int) -> None:
    """Dimension scales for a diagnostic: ``<observable>_runs`` get (run, *that observable's
    dimensions); otherwise the first axis of length T is time, a leading axis as long as the
    runs is run, and other axes get names of their own."""
    shape, diag = dset.shape, dset.parent
    base = key[:-len("_runs")] if key.endswith("_runs") else None
    if base in DIMS and shape[1:] == group[base].shape:
        dims = ("run", *DIMS[base])
    else:
        dims = [f"{key}_axis{axis}" for axis in range(len(shape))]
        if T in shape:
            dims[shape.index(T)] = "time"
        if len(shape) > 1 and dims[0] != "time" and "run" in diag \
                and diag["run"].shape == shape[:1]:
            dims[0] = "run"
    for axis, dim in enumerate(dims):
        if dim in group:  # a scale of the trajectory (time, unit, ...)
            scale = group[dim]
        elif dim in diag:
            scale = diag[dim]
        else:
            scale = diag.create_dataset(dim, data=np.arange(shape[axis]))
            scale.make_scale(dim)
            scale.attrs["description"] = ("simulation run (seed) index" if dim == "run"
                                          else f"axis {axis} of diagnostic {key!r}")
        dset.dims[axis].attach_scale(scale)


def _callable_references(problem: Problem) -> dict:
    """Where a user target's and activation's functions can be imported from (JSON-ready)."""
    refs = {}
    target, act = problem.target, problem.activation
    if TARGETS.get(target.name) != target:
        refs["target"] = {"name": target.name, "K": target.K, "fn": reference(target.fn)}
    if ACTIVATIONS.get(act.name) != act:
        refs["activation"] = {"name": act.name, "d2_dirac_at_zero": act.d2_dirac_at_zero,
                              **{w: reference(getattr(act, w)) for w in _ACTIVATION_FUNCTIONS}}
    return refs


_REBUILT: dict[str, Target | Activation] = {}  # one object per stored reference (probed once)


def _rebuild(kind: str, spec: dict) -> tuple[Target | Activation | None, list[str]]:
    """The user object a ``callables`` entry describes, or None and one line per missing fn."""
    key = kind + json.dumps(spec, sort_keys=True)
    if key in _REBUILT:
        return _REBUILT[key], []
    names = ("fn",) if kind == "target" else _ACTIVATION_FUNCTIONS
    found, missing = {}, []
    for name in names:
        try:
            found[name] = resolve(spec[name])
        except LookupError as exc:
            missing.append(f"{kind} {spec['name']!r}: {name} = {exc}")
    if missing:
        return None, missing
    if kind == "target":
        obj = Target(found["fn"], spec["K"], spec["name"])
    else:
        obj = Activation(*(found[w] for w in _ACTIVATION_FUNCTIONS), name=spec["name"],
                         d2_dirac_at_zero=spec["d2_dirac_at_zero"])
    _REBUILT[key] = obj
    return obj, []


def _user_objects(group: h5py.Group, pdict: dict, target, activation):
    """target and activation for Problem.from_dict: given, re-imported, or one error listing
    every function that cannot be found, with the call that supplies them."""
    refs = json.loads(group.attrs.get("callables", "{}"))
    version = int(group.attrs.get("format_version", 1))
    out = {"target": target, "activation": activation}
    missing = []
    for kind, registry in (("target", TARGETS), ("activation", ACTIVATIONS)):
        if out[kind] is not None:
            continue
        if kind in refs:
            out[kind], lines = _rebuild(kind, refs[kind])
            missing += lines
        elif pdict[kind] not in registry:
            missing.append(f"{kind} {pdict[kind]!r}: user-defined, and this file (format "
                           f"version {version}) does not record where its functions live")
    if not missing:
        return out["target"], out["activation"]
    supply = []
    if out["target"] is None and any(m.startswith("target ") for m in missing):
        supply.append(f"target=dmft.Target(fn, K={pdict['K']}, name={pdict['target']!r})")
    if out["activation"] is None and any(m.startswith("activation ") for m in missing):
        dirac = refs.get("activation", {}).get("d2_dirac_at_zero")
        extra = "" if dirac is None else f", d2_dirac_at_zero={dirac!r}"
        supply.append(f"activation=dmft.Activation(sigma, dsigma, d2sigma, "
                      f"name={pdict['activation']!r}{extra})")
    where, args = _where(group), ", ".join(supply)
    if group.file.attrs.get("format") == _SWEEP_FORMAT:
        call = f"dmft.sweeps.load_sweep(store, {args})"
    elif group.name == "/":
        call = f"dmft.load({group.file.filename!r}, {args})"
    else:
        call = f"dmft.load({group.file.filename!r}, group={group.name!r}, {args})"
    raise ValueError(
        f"cannot rebuild the problem stored in {where}: {len(missing)} function"
        f"{'s' if len(missing) > 1 else ''} of its user-defined target or activation cannot "
        "be found:\n  - "
        + "\n  - ".join(missing)
        + f"\nPass them to {call}"
    )


def _user_loss(group: h5py.Group, pdict: dict, loss):
    """The loss for Problem.from_dict: ``loss`` if given (its name must match the file's),
    None for registry losses (rebuilt by name), else a ValueError saying what to pass."""
    from .losses import get_loss

    name = pdict.get("loss", "square")
    if loss is not None:
        if loss.name != name:
            raise ValueError(f"loss={loss.name!r} was passed to load, but {_where(group)} was "
                             f"written with loss {name!r}")
        return loss
    try:
        get_loss(name)
    except ValueError:
        raise ValueError(
            f"cannot rebuild the problem stored in {_where(group)}: its loss {name!r} is "
            f"user-defined; pass loss=dmft.Loss(loss, dloss, d2loss, name={name!r}) to "
            "dmft.load") from None
    return None


def _where(group: h5py.Group) -> str:
    filename = group.file.filename
    return repr(filename) if group.name == "/" else f"{group.name!r} of {filename!r}"


def read_group(group: h5py.Group, *, target: Target | None = None,
               activation: Activation | None = None, loss=None) -> Trajectory:
    """Read a trajectory written by :func:`write_group` (format version 1 or 2).

    User-defined targets and activations are re-imported from the module and name stored with
    them; ``target`` / ``activation`` override that (and are required when it fails). A user
    loss (``dmft.Loss``) must be passed as ``loss``; registry losses are found by name.
    """
    fmt = group.attrs.get("format")
    if fmt != TRAJECTORY_FORMAT:
        raise ValueError(f"{_where(group)} does not hold a dmft.Trajectory (format {fmt!r})")
    version = int(group.attrs.get("format_version", 1))
    if version > FORMAT_VERSION:
        raise ValueError(f"{_where(group)} was written by a newer dmft (format version "
                         f"{version} > {FORMAT_VERSION}); upgrade dmft to read it")
    pdict = json.loads(group.attrs["problem"])
    # a user object passed for the wrong file would otherwise be attached silently
    for field_name, given in (("target", target), ("activation", activation)):
        if given is not None and given.name != pdict[field_name]:
            raise ValueError(
                f"{field_name}={given.name!r} was passed to load, but {_where(group)} was "
                f"written with {field_name} {pdict[field_name]!r}"
            )
    target, activation = _user_objects(group, pdict, target, activation)
    problem = Problem.from_dict(pdict, target=target, activation=activation,
                                loss=_user_loss(group, pdict, loss))
    kw = {name: group[name][()] for name in _ARRAYS if name in group}
    if "physical_time" in group:
        kw["time"] = group["physical_time"][()]
    diagnostics = {}
    if "diagnostics" in group:
        dg = group["diagnostics"]
        diagnostics = {k: v[()] for k, v in dg.items() if not h5py.h5ds.is_scale(v.id)}
        diagnostics.update({k: json.loads(v) for k, v in dg.attrs.items()})
    return Trajectory(problem=problem, provenance=json.loads(group.attrs["provenance"]),
                      diagnostics=diagnostics, **kw)


def save(traj: Trajectory, path) -> None:
    """Write ``traj`` to the HDF5 file ``path`` (temporary file, then ``os.replace``).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, dmft
    >>> traj = dmft.Trajectory(dmft.Problem(T=2), M=np.zeros((2, 2, 2)), Q=np.ones((2, 2, 2)),
    ...                        e_train=np.zeros(2), e_gen=np.ones(2))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.h5"
    >>> save(traj, path)
    >>> load(path).problem == traj.problem
    True
    """
    with atomic_h5file(path) as f:
        write_group(f, traj)


def load(path, *, target: Target | None = None, activation: Activation | None = None,
         group: str | None = None, loss=None) -> Trajectory:
    """Read a trajectory saved by :meth:`Trajectory.save` (or written by :func:`write_group`).

    Parameters
    ----------
    path : str or Path
    target, activation : optional
        A user-defined target or activation, needed only when the functions stored by module
        and name cannot be imported (lambdas, functions defined in a notebook or inside
        another function, a module no longer on the path); the error then lists them all.
    group : str, optional
        Path of the group inside the file holding the trajectory (default the root).
    loss : dmft.Loss, optional
        The user-defined loss the trajectory was computed with (registry losses are rebuilt
        from their name).

    Returns
    -------
    Trajectory

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not HDF5 (or is truncated), holds something else than a trajectory (a
        sweep store: use ``dmft.sweeps.load_sweep``), or names functions that cannot be found.

    Examples
    --------
    >>> import dmft
    >>> traj = dmft.load("run.h5")  # doctest: +SKIP
    >>> traj = dmft.load("run.h5", target=dmft.Target(my_fn, K=2, name="mine"))  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} is not a file" if path.exists()
                                else f"no such file: {str(path)!r}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(_unreadable(path, exc)) from None
    with f:
        if group is not None:
            if group not in f:
                raise ValueError(f"{str(path)!r} has no group {group!r}; its groups: "
                                 f"{_trajectory_groups(f)}")
            return read_group(f[group], target=target, activation=activation, loss=loss)
        fmt = f.attrs.get("format")
        if fmt == _SWEEP_FORMAT:
            raise ValueError(
                f"{str(path)!r} is a sweep store (format {fmt!r}), not one trajectory: read "
                f"it with dmft.sweeps.load_sweep({str(path)!r}), whose result gives each "
                "trajectory by .trajectory(method, **coords)"
            )
        if fmt != TRAJECTORY_FORMAT:
            inside = _trajectory_groups(f)
            hint = (f"; it holds trajectories in the groups {inside}: pass group=..."
                    if inside else "")
            raise ValueError(f"{str(path)!r} does not hold a dmft.Trajectory (format "
                             f"{fmt!r}){hint}")
        return read_group(f, target=target, activation=activation, loss=loss)


def _trajectory_groups(f: h5py.File) -> list[str]:
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and obj.attrs.get("format") == TRAJECTORY_FORMAT:
            found.append(name)

    f.visititems(visit)
    return found


def _unreadable(path: Path, exc: OSError) -> str:
    """Why h5py cannot open ``path``, in words naming the file."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    # the signature sits at offset 0 or, after a user block, at 512, 1024, 2048, ...
    offsets = [0] + [512 << i for i in range(8)]
    signed = any(head[o:o + len(_HDF5_SIGNATURE)] == _HDF5_SIGNATURE for o in offsets)
    size = path.stat().st_size
    if size == 0:
        what = "is empty (0 bytes)"
    elif signed:
        what = (f"is a damaged or truncated HDF5 file ({size} bytes; e.g. an interrupted "
                "copy or download)")
    else:
        what = "is not an HDF5 file (it does not start with the HDF5 signature)"
    return f"{str(path)!r} {what}: h5py cannot open it ({str(exc).splitlines()[0]})"
