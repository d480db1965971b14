"""The replicas of a multi-pass DMFT solve, solved on worker threads.

Replicas are independent sub-solves, so they are solved side by side: each worker thread solves
one replica at a time from start to end, calling the kernels with one numba thread (a
replica's steps then never wait for another thread: a barrier per step cost more than the step
on a loaded machine), and takes the next replica when it is done. Each replica's arithmetic is
the same whatever the number of workers or the order in which they run, so results do not
depend on them. Steps are run in chunks of about a quarter of a second; between chunks a worker
reports progress and, when the driver asks for a snapshot (a checkpoint), waits while its state
is saved.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numba
import numpy as np

from dmft.problem import Problem
from solvers.numerics.dmft_state import (
    DIVERGED,
    OK,
    Blocks,
    Diagnostics,
    Params,
    Results,
    Samples,
    Sums,
    Workspace,
    new_workspace,
    replica,
    reset_workspace,
    zero_sums,
)
from solvers.numerics.step import finish_step_pseudo_inverse

from .buffers import draw_statics

__all__ = ["Setup", "Outcome", "InFlight", "Worker", "ReplicaPool"]

_CHUNK_SECONDS = 0.25  # target duration of one call of the kernels (progress, snapshots)


@dataclass
class Setup:
    """What every replica of a solve shares."""

    problem: Problem
    pathwise: bool
    B: int  # replicas
    Sb: int  # samples per replica
    key: np.uint64
    starts: np.ndarray  # (n_blk + 1,) block starts within a replica
    kernels: object  # passes.multipass_kernels(...)
    user_fns: tuple
    loss_args: tuple  # (c, half_square, value, d1, d2): passes.py
    par: Params
    storage: str  # "stored" | "replay"
    spans: list  # [(k0, k1)] blocks processed together (replay chunks)
    sqrt_q0: np.ndarray  # (P, rank) factor of Qperp0

    @property
    def n_blk(self) -> int:
        return len(self.starts) - 1

    def blocks(self, b: int, k0: int = 0, k1: int | None = None) -> Blocks:
        """Blocks k0..k1-1 of replica b (their counter streams are b * n_blk + k)."""
        k1 = self.n_blk if k1 is None else k1
        return Blocks(self.key, self.starts[k0:k1 + 1] - self.starts[k0],
                      b * self.n_blk + np.arange(k0, k1, dtype=np.int64))


@dataclass
class Outcome:
    """Results of the B replicas (rows b), filled as they finish."""

    res: Results
    Q: np.ndarray  # (B, T, P, P)
    cond_cw: np.ndarray  # (B, T)
    chol_dropped: np.ndarray  # (B, T) int64
    done: np.ndarray  # (B,) int64: steps completed with finite values; -1 while unfinished
    pivots: np.ndarray  # (B, 4): pivot statistics of the two factors (:func:`pivot_stats`)

    @classmethod
    def zeros(cls, res: Results) -> Outcome:
        B, T, P = res.Lam.shape[:3]
        return cls(res, np.zeros((B, T, P, P)), np.zeros((B, T)),
                   np.zeros((B, T), dtype=np.int64), np.full(B, -1, dtype=np.int64),
                   np.full((B, 4), np.nan))


def pivot_stats(L: np.ndarray, A: np.ndarray) -> tuple[float, float]:
    """Of a Cholesky factor L (n, n) of A (n, n): the smallest relative pivot L_jj^2 / A_jj
    and max L_jj^2 / min L_jj^2 (a lower bound on A's condition number), over the pivots
    kept (not dropped as degenerate)."""
    piv = np.diagonal(L) ** 2
    diag = np.diagonal(A)
    kept = piv > 0.0
    if not kept.any():
        return np.nan, np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = piv[kept] / diag[kept]
    return float(rel.min()), float(piv[kept].max() / piv[kept].min())


@dataclass
class InFlight:
    """A replica being solved: b, the steps completed (t), its workspace and stored history."""

    b: int
    t: int
    ws: Workspace
    smp: Samples | None  # stored histories (None when replayed)
    m: int  # samples of the replica (the first m entries of smp's last axes)


@dataclass
class Worker:
    """The arrays one worker thread reuses from replica to replica."""

    chunks: dict  # sample count -> Samples
    sums: Sums
    ws: Workspace
    scratch: np.ndarray  # (T P, T P)
    current: InFlight | None = None
    chunk: int = 1  # steps per kernel call, adapted to _CHUNK_SECONDS

    @classmethod
    def new(cls, setup: Setup, chunks: dict) -> Worker:
        T, P, K = setup.problem.T, setup.problem.P, setup.problem.K
        return cls(chunks, zero_sums(setup.n_blk, T, P, K, setup.pathwise),
                   new_workspace(T, P), np.zeros((T * P, T * P)))


def _rows(sums: Sums, k0: int, k1: int, pathwise: bool) -> Sums:
    """The sums of blocks k0..k1-1 (views); without pathwise sums their single rows."""
    p0, p1 = (k0, k1) if pathwise else (0, 1)
    return Sums(sums.C[k0:k1], sums.Fg[k0:k1], sums.gram[k0:k1], sums.Fz[k0:k1],
                sums.loss[k0:k1], sums.J[p0:p1], sums.R[p0:p1])


@dataclass
class ReplicaPool:
    """Solves replicas ``todo`` (in order) on ``workers`` (one thread each when several).

    ``resume`` maps a replica to the state to start it from, which ``restore(worker, state,
    smp)`` copies into the worker's arrays (returning the step reached); ``bar`` has
    ``steps(t0, t1)`` (steps t0 <= t < t1 of a replica done); ``before_kernels`` is called
    before a worker's first kernel call (compilation on a first run); ``on_done(b)`` after
    replica b finished (its row of ``outcome`` complete); ``snapshot(in_flight)`` is called
    with every worker parked between two chunks when ``snapshot_due()`` says so.
    """

    setup: Setup
    outcome: Outcome
    workers: list
    todo: list
    bar: object
    before_kernels: object = None
    on_done: object = None
    resume: dict = field(default_factory=dict)
    restore: object = None
    snapshot_due: object = None
    snapshot: object = None

    def __post_init__(self):
        self._cond = threading.Condition()
        self._queue = list(self.todo)
        self._limit = self.setup.problem.T  # steps every finished replica completed
        self._pause = False
        self._parked = 0
        self._active = 0
        self._stop = False
        self._errors: list[BaseException] = []

    # ------------------------------------------------------------------ threads
    def run(self) -> None:
        """Solve every replica of ``todo``; returns when all are done (or raises)."""
        if len(self.workers) == 1:
            self._active = 1
            self._work(self.workers[0], threads=None, poll=True)
            return
        threads_each = max(1, numba.get_num_threads() // len(self.workers))
        threads = [threading.Thread(target=self._work, args=(w, threads_each, False),
                                    daemon=True) for w in self.workers]
        self._active = len(threads)
        for th in threads:
            th.start()
        try:
            with self._cond:
                while self._active > 0 and not self._errors:
                    self._cond.wait(timeout=0.5)
                    if self.snapshot_due is not None and self._active and self.snapshot_due():
                        self._take_snapshot()
        except BaseException:
            with self._cond:
                self._stop = True
                self._pause = False
                self._cond.notify_all()
            for th in threads:
                th.join()
            raise
        for th in threads:
            th.join()
        if self._errors:
            raise self._errors[0]

    def _take_snapshot(self) -> None:
        """With the lock held: park every active worker between two chunks, save, resume."""
        self._pause = True
        self._cond.wait_for(lambda: self._parked == self._active or self._errors)
        try:
            if not self._errors:
                self.snapshot([w.current for w in self.workers if w.current is not None])
        finally:
            self._pause = False
            self._cond.notify_all()

    def _checkpoint_here(self, worker: Worker, b: int, t: int, ws: Workspace,
                         smp: Samples | None, poll: bool) -> None:
        """Between two chunks: publish the state; park while a snapshot is taken."""
        worker.current = InFlight(b, t, ws, smp, self.setup.Sb)
        if poll:  # a single worker: snapshots are taken from its own thread
            if self.snapshot_due is not None and self.snapshot_due():
                self.snapshot([worker.current])
            return
        with self._cond:
            if self._pause:
                self._parked += 1
                self._cond.notify_all()
                self._cond.wait_for(lambda: not self._pause)
                self._parked -= 1
            if self._stop:
                raise _Stopped

    def _next(self) -> int | None:
        with self._cond:
            return self._queue.pop(0) if self._queue and not self._stop else None

    def _work(self, worker: Worker, threads: int | None, poll: bool) -> None:
        if threads is not None:
            numba.set_num_threads(threads)  # per thread: the kernels run serially here
        try:
            while (b := self._next()) is not None:
                done = self._solve(worker, b, poll)
                self.outcome.done[b] = done
                worker.current = None
                if self.on_done is not None:
                    self.on_done(b)
                with self._cond:
                    self._limit = min(self._limit, done)
        except _Stopped:
            pass
        except BaseException as err:  # noqa: BLE001 - re-raised by run()
            if poll:
                raise
            with self._cond:
                self._errors.append(err)
                self._stop = True
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def _limit_now(self) -> int:
        with self._cond:
            return self._limit

    # ------------------------------------------------------------------ one replica
    def _solve(self, worker: Worker, b: int, poll: bool) -> int:
        """Solve replica b on ``worker``; returns the steps completed with finite values."""
        st = self.setup
        ws = worker.ws
        reset_workspace(ws)
        ws.Wg[0, :, :st.sqrt_q0.shape[1]] = st.sqrt_q0
        P = ws.Wg.shape[1]
        ws.WgT[:P, :P] = ws.Wg[0, :, :P].T
        state = self.resume.get(b)
        t = 0
        smp = worker.chunks[st.Sb] if st.storage == "stored" else None
        if smp is not None:
            blocks = st.blocks(b)
            draw_statics(st.problem, smp, blocks)
        if state is not None:
            t = self.restore(worker, state, smp)
            if smp is not None and t > 1:
                st.kernels.refill_noise(t, blocks, smp)
            self.bar.steps(0, t)
        rep = replica(self.outcome.res, b, ws)
        diag = Diagnostics(self.outcome.cond_cw[b], self.outcome.chol_dropped[b], worker.scratch)
        if self.before_kernels is not None:
            self.before_kernels()
        while t < (limit := self._limit_now()):
            self._checkpoint_here(worker, b, t, ws, smp, poll)
            t_end = min(limit, t + worker.chunk)
            t0 = time.perf_counter()
            if smp is not None:
                t_new, status = st.kernels.stored_steps((t, t_end), st.par, blocks, smp,
                                                        worker.sums, rep, diag, *st.user_fns,
                                                        st.loss_args)
            else:
                t_new, status = self._replayed_steps(worker, b, t, t_end, rep, diag)
            self.bar.steps(t, t_new)
            self._adapt(worker, t_new - t, time.perf_counter() - t0)
            if status == OK:
                t = t_end
                continue
            if status == DIVERGED or not self._finish_pseudo_inverse(t_new, worker, rep, diag):
                return self._done(b, ws, t_new)
            self.bar.steps(t_new, t_new + 1)
            t = t_new + 1  # step t_new was finished by the pseudo-inverse: resume after it
        return self._done(b, ws, min(t, self._limit_now()))

    def _replayed_steps(self, worker: Worker, b: int, t: int, t_end: int, rep, diag):
        """Steps t..t_end-1, each regenerating every chunk of the replica from t = 0."""
        st = self.setup
        for u in range(t, t_end):
            for arr in worker.sums:
                arr[...] = 0.0
            for k0, k1 in st.spans:
                smp = worker.chunks[int(st.starts[k1] - st.starts[k0])]
                blocks = st.blocks(b, k0, k1)
                draw_statics(st.problem, smp, blocks)
                st.kernels.replay_pass(u, st.par, blocks, smp,
                                       _rows(worker.sums, k0, k1, st.pathwise), rep,
                                       *st.user_fns, st.loss_args)
            status = st.kernels.finish_step(u, st.par, worker.sums, rep, diag)
            if status != OK:
                return u, status
        return t_end, OK

    def _finish_pseudo_inverse(self, t: int, worker: Worker, rep, diag) -> bool:
        return finish_step_pseudo_inverse(t, self.setup.par, worker.sums, rep, diag) == OK

    def _done(self, b: int, ws: Workspace, steps: int) -> int:
        """Record Q of replica b at its completed steps; returns the steps.

        Q(t) = Qperp(t, t) + M(t) M(t)^T with Qperp(t, t) = Wg(t) Wg(t)^T: the cavity field
        w(t) = Wg(t) g is linear in white inputs g (docs/theory/dmft.md)."""
        Wg = ws.Wg[:steps]
        M = self.outcome.res.M[b, :steps]
        q = Wg @ Wg.transpose(0, 2, 1)
        self.outcome.Q[b, :steps] = 0.5 * (q + q.transpose(0, 2, 1)) + M @ M.transpose(0, 2, 1)
        n = steps * ws.Wg.shape[1]
        C = self.outcome.res.C[b, :steps, :steps].transpose(0, 2, 1, 3).reshape(n, n)
        if not self.setup.par.noise_memory:
            C = np.diag(np.diagonal(C))  # (only the diagonal is read)
        C = C + self.setup.par.langevin * np.eye(n)  # Langevin noise: on C's diagonal
        self.outcome.pivots[b] = (*pivot_stats(ws.lmat[:n, :n], C),
                                  *pivot_stats(ws.lw[:n, :n], ws.cw[:n, :n]))
        return steps

    @staticmethod
    def _adapt(worker: Worker, steps: int, seconds: float) -> None:
        """Steps per call for the next call: about _CHUNK_SECONDS, at most doubling."""
        if steps <= 0:
            return
        per_step = seconds / steps
        want = int(_CHUNK_SECONDS / per_step) if per_step > 0 else 2 * worker.chunk
        worker.chunk = max(1, min(2 * worker.chunk, want))


class _Stopped(Exception):
    """A worker was asked to stop (another failed, or the solve was interrupted)."""
