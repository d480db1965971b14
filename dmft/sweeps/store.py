"""A sweep's store: one HDF5 file plus a journal of one file per result, compacted into it.

Layout, atomicity and the compaction policy: docs/guide/sweeps.md, "The store".
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py

from ..io import atomic_h5file, write_group
from ..trajectory import Trajectory
from .keys import canonical
from .tasks import Diverged, Task

__all__ = ["Store", "write_result", "write_manifest", "STORE_FORMAT"]

STORE_FORMAT = "dmft.Sweep"
STORE_FORMAT_VERSION = 1
KINDS = ("results", "sweeps")
# journal size (results) below which no compaction happens before the end of the sweep
_COMPACT_MIN = 32


class Store:
    """The main HDF5 file ``path`` plus its journal directory ``<path>.journal/``.

    Parameters
    ----------
    path : str or Path
        The main file (the ``store=`` of :func:`dmft.sweep`).
    """

    def __init__(self, path) -> None:
        self.path = Path(path)
        self.journal = self.path.with_name(self.path.name + ".journal")

    # ---------------------------------------------------------------- reading
    def check(self) -> None:
        """Raise if the main file exists but is not a sweep store (never overwrite it)."""
        if not self.path.exists():
            return
        try:
            with h5py.File(self.path, "r") as f:
                fmt = f.attrs.get("format")
        except OSError as exc:
            raise ValueError(f"store {str(self.path)!r} exists and is not an HDF5 file: {exc}") \
                from None
        if fmt != STORE_FORMAT:
            raise ValueError(
                f"store {str(self.path)!r} exists and is not a dmft sweep store "
                f"(format {fmt!r}); choose another path"
            )

    def journal_files(self) -> list[Path]:
        """The complete journal files, sorted by name."""
        if not self.journal.is_dir():
            return []
        # names starting with '.' are temporary files of an unfinished write
        return sorted(p for p in self.journal.glob("*.h5") if not p.name.startswith("."))

    def index(self) -> dict[tuple[str, str], Path]:
        """(kind, key) -> file holding it; journal manifests override the main file's.

        The journal is read before the main file: a compaction running meanwhile (another
        process) only moves journal entries into a newer main file, so nothing is missed.
        """
        out: dict[tuple[str, str], Path] = {}
        for part in self.journal_files():
            try:
                with h5py.File(part, "r") as f:
                    for kind in KINDS:
                        for key in f.get(kind, {}):
                            out[(kind, key)] = part
            except FileNotFoundError:  # merged into the main file meanwhile
                continue
            except OSError as exc:  # cannot happen with atomic writes; never fatal
                warnings.warn(f"ignoring unreadable journal file {part}: {exc}", stacklevel=2)
        if self.path.exists():
            with h5py.File(self.path, "r") as f:
                for kind in KINDS:
                    for key in f.get(kind, {}):
                        out.setdefault((kind, key), self.path)
        return out

    def main_count(self) -> int:
        """Number of results in the main file."""
        if not self.path.exists():
            return 0
        with h5py.File(self.path, "r") as f:
            return len(f.get("results", {}))

    # ---------------------------------------------------------------- writing
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the journal directory (one driver per store)."""
        self.journal.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.journal, os.O_RDONLY)
        acquired = False
        try:
            try:
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except ImportError:  # not POSIX: no lock
                pass
            except BlockingIOError:
                raise RuntimeError(
                    f"store {str(self.path)!r} is being written by another sweep (its journal "
                    f"{str(self.journal)!r} is locked)"
                ) from None
            acquired = True
            yield
        finally:
            if acquired:  # empty after a final compaction: tidy up (fails if not empty)
                with contextlib.suppress(OSError):
                    self.journal.rmdir()
            os.close(fd)

    def write(self, kind: str, key: str, fill: Callable[[h5py.Group], None]) -> None:
        """Write one entry atomically as its own journal file."""
        with atomic_h5file(self.journal / f"{kind[0]}-{key}.h5") as f:
            _stamp(f)
            fill(f.create_group(f"{kind}/{key}"))

    @staticmethod
    def compaction_due(journal_results: int, main_results: int) -> bool:
        """Whether to compact now: the journal holds a quarter of the main file's results (and
        at least ``_COMPACT_MIN``), so the total copying stays linear in the results."""
        return journal_results >= max(_COMPACT_MIN, main_results // 4)

    def compact(self) -> None:
        """Merge the journal into the main file (new file + rename), then drop the journal."""
        parts = self.journal_files()
        if not parts:
            return
        merged = []
        with atomic_h5file(self.path) as new:
            _stamp(new)
            groups = {kind: new.create_group(kind) for kind in KINDS}
            # journal first: its manifests are newer than the main file's
            for part in parts:
                try:
                    src = h5py.File(part, "r")
                except OSError as exc:
                    warnings.warn(f"ignoring unreadable journal file {part}: {exc}", stacklevel=2)
                    continue
                with src:
                    for kind in KINDS:
                        for key in src.get(kind, {}):
                            if key not in groups[kind]:
                                src.copy(src[kind][key], groups[kind], name=key)
                merged.append(part)
            if self.path.exists():
                with h5py.File(self.path, "r") as old:
                    for kind in KINDS:
                        for key in old.get(kind, {}):
                            if key not in groups[kind]:
                                old.copy(old[kind][key], groups[kind], name=key)
        for part in merged:
            part.unlink(missing_ok=True)

    def tidy(self) -> None:
        """Remove stale temporary files of killed writes (only under the lock, journal empty)."""
        if self.journal.is_dir() and not self.journal_files():
            for leftover in self.journal.iterdir():
                if leftover.name.startswith("."):
                    with contextlib.suppress(OSError):
                        leftover.unlink()


def _stamp(f: h5py.File) -> None:
    f.attrs["format"] = STORE_FORMAT
    f.attrs["format_version"] = STORE_FORMAT_VERSION


def write_result(group: h5py.Group, task: Task, outcome: Trajectory | Diverged) -> None:
    """Store one (point, method) outcome with its key, coordinates, options and seeds."""
    if isinstance(outcome, Trajectory):
        write_group(group, outcome)
        group.attrs["status"] = "ok"
    else:
        group.attrs["problem"] = json.dumps(task.problem.to_dict())
        group.attrs["provenance"] = json.dumps({"method": task.method})
        group.attrs["status"] = "diverged"
        group.attrs["step"] = outcome.step
        group.attrs["message"] = outcome.message
    group.attrs["key"] = task.key
    group.attrs["method"] = task.method
    group.attrs["coords"] = json.dumps(task.coords)
    group.attrs["options"] = canonical(task.options)
    group.attrs["seeds"] = json.dumps(task.seeds)


def write_manifest(group: h5py.Group, spec: dict, keys: list) -> None:
    """Store one sweep's description and its result keys (grid shape x methods)."""
    group.attrs["spec"] = canonical(spec)
    group.attrs["keys"] = json.dumps(keys)
    group.attrs["created"] = time.time()
