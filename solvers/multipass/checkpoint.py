"""Checkpoints of a multi-pass DMFT solve: a directory that a killed solve resumes from.

Layout of the directory ``path``:

- ``meta.json``: what was being solved (problem, samples, seed, estimator, replicas, ...); a
  resumed call must describe the same solve;
- ``replica-B.npz``: the results of finished replica B, written once when it finishes;
- ``in-flight.npz``: the replicas being solved when it was written, each at a step boundary:
  their results so far, working state and stored per-sample histories (F, and the pathwise
  response), rewritten as a whole every few seconds.

Every file is written under a temporary name and renamed (``dmft.io.atomic_path``): a kill at
any moment leaves the previous version or the new one. The random inputs are not saved: they
are regenerated from their counter streams. A replica resumed from its saved step computes
exactly what it would have computed uninterrupted, so the final result is bit-identical.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .replicas import InFlight, Outcome, Worker

__all__ = ["Checkpoint", "FORMAT"]

FORMAT = 1
_META = "meta.json"
_IN_FLIGHT = "in-flight.npz"


def _lower(x: np.ndarray, t: int, strict: bool) -> np.ndarray:
    """Entries [i, j] (j <= i, or j < i if strict) of the leading t x t block of x (T, T, ...)."""
    i, j = np.tril_indices(t, -1 if strict else 0)
    return x[i, j]


def _unlower(packed: np.ndarray, out: np.ndarray, t: int, strict: bool) -> None:
    i, j = np.tril_indices(t, -1 if strict else 0)
    out[i, j] = packed


class Checkpoint:
    """The checkpoint directory of one solve (module docstring).

    Parameters
    ----------
    path : str or Path
        Directory (created if needed).
    meta : dict
        JSON-serialisable description of the solve; an existing checkpoint must hold the same.
    every : float
        Seconds between snapshots of the replicas in flight; the interval also stays at
        least 10 times the last snapshot's writing time (at most ~10% of the solve).
    """

    def __init__(self, path, meta: dict, every: float = 10.0) -> None:
        self.path = Path(path)
        self.meta = {"format": FORMAT, **meta}
        self.every = float(every)
        self._next = time.monotonic() + self.every
        self.writes = 0

    # ------------------------------------------------------------------ reading
    def load(self, outcome: Outcome) -> dict[int, dict]:
        """Fill ``outcome`` with the finished replicas found; return the saved states of the
        replicas in flight (replica -> arrays). Creates the directory and ``meta.json`` when
        there is no checkpoint yet; raises ValueError if it describes another solve."""
        meta_file = self.path / _META
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"checkpoint={str(self.path)!r} exists and is not a directory")
        if not meta_file.exists():
            self.path.mkdir(parents=True, exist_ok=True)
            self._write_bytes(meta_file, json.dumps(self.meta, indent=1).encode())
            return {}
        saved = json.loads(meta_file.read_text())
        if saved != json.loads(json.dumps(self.meta)):
            diff = sorted(k for k in set(saved) | set(self.meta)
                          if saved.get(k) != json.loads(json.dumps(self.meta.get(k))))
            raise ValueError(
                f"checkpoint={str(self.path)!r} belongs to another solve (differs in "
                f"{', '.join(diff)}); use another path, or delete it to start afresh")
        for b in range(outcome.done.shape[0]):
            f = self.path / f"replica-{b}.npz"
            if f.exists():
                with np.load(f) as z:
                    t = int(z["done"])
                    self._read_rows(outcome, b, z, t, t)
                    outcome.Q[b, :t] = z["Q"]
                    outcome.pivots[b] = z["pivots"]
                    outcome.done[b] = t
        states = {}
        f = self.path / _IN_FLIGHT
        if f.exists():
            with np.load(f) as z:
                for b in (int(v) for v in z["replicas"]):
                    if outcome.done[b] < 0:
                        pre = f"b{b}/"
                        states[b] = {k[len(pre):]: z[k] for k in z.files if k.startswith(pre)}
        return states

    @staticmethod
    def _read_rows(outcome: Outcome, b: int, z, t: int, m_rows: int) -> None:
        """Replica b's saved results of its first t steps (and M's first m_rows rows)."""
        res = outcome.res
        res.M[b, :m_rows] = z["M"]
        res.Lam[b, :t] = z["Lam"]
        res.e_train[b, :t] = z["e_train"]
        _unlower(z["R"], res.R[b], t, strict=True)
        C = res.C[b]
        _unlower(z["C"], C, t, strict=False)
        i, j = np.triu_indices(t, 1)  # C[s, t] = C[t, s]^T
        C[i, j] = C[j, i].transpose(0, 2, 1)
        outcome.cond_cw[b, :t] = z["cond_cw"]
        outcome.chol_dropped[b, :t] = z["chol_dropped"]

    def restore(self, outcome: Outcome):
        """A function ``restore(worker, state, smp)`` for :class:`.replicas.ReplicaPool`: copy
        a saved state into the worker's (just reset) workspace, the replica's results and its
        stored histories; returns the step to resume at (0: start afresh, e.g. a replayed
        state resumed with stored histories)."""

        def restore(worker: Worker, state: dict, smp) -> int:
            t = int(state["t"])
            if smp is not None and "F_h" not in state:
                return 0
            self._read_rows(outcome, int(state["b"]), state, t, t + 1)
            ws = worker.ws
            P = ws.Wg.shape[1]
            n = t * P
            ws.Wg[:t + 1] = state["Wg"]
            ws.WgT[:, :n + P] = ws.Wg[:t + 1].reshape(n + P, -1).T
            ws.Gf[:t + 1, :, :n] = state["Gf"]
            for name in ("gram", "cw", "lw", "lmat"):
                getattr(ws, name)[:n, :n] = state[name]
            ws.lwt[:n, :n] = ws.lw[:n, :n].T
            ws.lmatt[:n, :n] = ws.lmat[:n, :n].T
            ws.cw_info[:] = state["cw_info"]
            if smp is not None:
                m = state["F_h"].shape[-1]
                smp.F_h[:t, :, :m] = state["F_h"]
                if "chi_h" in state:
                    smp.chi_h[:t, :t, :, :, :m] = state["chi_h"]
                    smp.J_h[:, :, :m] = state["J_h"]
            return t

        return restore

    # ------------------------------------------------------------------ writing
    @staticmethod
    def _write_bytes(path: Path, data: bytes) -> None:
        from dmft.io import atomic_path

        with atomic_path(path) as tmp:
            tmp.write_bytes(data)

    @staticmethod
    def _write_npz(path: Path, arrays: dict) -> None:
        from dmft.io import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)

    def save_done(self, outcome: Outcome, b: int) -> None:
        """Write the results of finished replica b."""
        t = int(outcome.done[b])
        res = outcome.res
        self._write_npz(self.path / f"replica-{b}.npz", {
            "done": np.int64(t), "M": res.M[b, :t], "Lam": res.Lam[b, :t],
            "e_train": res.e_train[b, :t], "C": _lower(res.C[b], t, strict=False),
            "R": _lower(res.R[b], t, strict=True), "Q": outcome.Q[b, :t],
            "pivots": outcome.pivots[b],
            "cond_cw": outcome.cond_cw[b, :t], "chol_dropped": outcome.chol_dropped[b, :t]})

    def due(self) -> bool:
        """Whether a snapshot of the replicas in flight is due."""
        return time.monotonic() >= self._next

    def save_in_flight(self, outcome: Outcome, states: list[InFlight]) -> None:
        """Write the replicas in flight (each at its step boundary ``t``)."""
        start = time.monotonic()
        res = outcome.res
        arrays = {"replicas": np.array([s.b for s in states], dtype=np.int64)}
        for s in states:
            b, t, ws = s.b, s.t, s.ws
            n = t * ws.Wg.shape[1]
            pre = f"b{b}/"
            part = {"b": np.int64(b), "t": np.int64(t), "M": res.M[b, :t + 1],
                    "Lam": res.Lam[b, :t], "e_train": res.e_train[b, :t],
                    "C": _lower(res.C[b], t, strict=False), "R": _lower(res.R[b], t, strict=True),
                    "cond_cw": outcome.cond_cw[b, :t], "chol_dropped": outcome.chol_dropped[b, :t],
                    "Wg": ws.Wg[:t + 1], "Gf": ws.Gf[:t + 1, :, :n], "gram": ws.gram[:n, :n],
                    "cw": ws.cw[:n, :n], "lw": ws.lw[:n, :n], "lmat": ws.lmat[:n, :n],
                    "cw_info": ws.cw_info}
            if s.smp is not None:
                m = s.m
                part["F_h"] = s.smp.F_h[:t, :, :m]
                if s.smp.chi_h.shape[0] > 1:
                    part["chi_h"] = s.smp.chi_h[:t, :t, :, :, :m]
                    part["J_h"] = s.smp.J_h[:, :, :m]
            arrays.update({pre + k: v for k, v in part.items()})
        self._write_npz(self.path / _IN_FLIGHT, arrays)
        self.writes += 1
        took = time.monotonic() - start
        self._next = time.monotonic() + max(self.every, 10.0 * took)

    def remove(self) -> None:
        """Delete the checkpoint's files (after a successful solve)."""
        for f in [self.path / _META, self.path / _IN_FLIGHT,
                  *self.path.glob("replica-*.npz")]:
            f.unlink(missing_ok=True)
        try:
            self.path.rmdir()
        except OSError:  # not empty (files of the user's) or already gone
            pass
