"""Comparing trajectories: z-scores, chi^2 and a verdict (``extrapolate`` is re-exported from
:mod:`dmft.extrapolation`).

The verdict rule (see :func:`compare`) is a Bonferroni-corrected maximum |z|: the probability
that two trajectories with the same mean and correct standard errors are declared to disagree
is at most ``2 Phi(-threshold)`` (0.27 % for the default ``threshold=3``) however many entries
are compared and however they are correlated (entries of one trajectory at different times
usually are). Standard errors estimated from a few replicas or seeds make z Student-t rather
than normal; the degrees of freedom are read from the provenance (docs/validation.md).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .extrapolation import extrapolate, problem_differences
from .stats import (
    critical_value,
    dof_from_provenance,
    family_tail,
    normal_equivalent,
    welch_dof,
    z_scores,
)
from .trajectory import OBSERVABLES, Trajectory, matching_indices

__all__ = ["Report", "compare", "extrapolate"]

# absolute tolerance under which two values whose combined SE is also below it count as equal
_EXACT_ATOL = 1e-12


# ----------------------------------------------------------------------------- the report
@dataclass(eq=False)
class Report:
    """The outcome of :func:`compare`.

    Arrays are indexed like the observables, restricted to the compared times:
    ``z["M"]`` has shape (n_t, P, K), ``z["Q"]`` (n_t, P, P), ``z["e_gen"]`` (n_t,).

    Attributes
    ----------
    label_a, label_b : str
        Short descriptions of the two trajectories (method and sizes).
    observables : tuple of str
    times : ndarray of int, shape (n_t,)
    values_a, values_b, se_a, se_b : dict of str -> ndarray
        The compared values and their standard errors.
    z : dict of str -> ndarray
        (a - b) / sqrt(se_a^2 + se_b^2); 0 where the two values are equal within ``atol`` and
        both standard errors vanish ("exact" entries), +-inf where both standard errors vanish
        but the values differ, nan where a value or standard error is not finite.
    counted : dict of str -> ndarray of bool
        Entries entering the statistics: finite or infinite z, not exact, and for Q only the
        upper triangle (j <= k; Q is symmetric, the lower triangle repeats it).
    dof_a, dof_b : float
        Degrees of freedom of each side's standard errors (``inf``: exact or known SEs).
    se_dof : dict of str -> ndarray
        Per entry, the Welch-Satterthwaite degrees of freedom of the combined standard error
        (``inf`` where z is normal).
    z_equiv : dict of str -> ndarray
        Per entry, the normal-equivalent score: the normal quantile with the same tail
        probability as z under Student's t with ``se_dof`` degrees of freedom, signed like z
        (equal to z where ``se_dof`` is infinite).
    crit : dict of str -> ndarray
        Per entry, the critical |z| under its own Student-t tails (``z_crit`` where normal).
    tails : str
        ``"normal"`` or ``"Student-t"`` (when any counted entry has finite ``se_dof``).
    threshold : float
        The requested significance, in standard deviations.
    z_crit : float
        Critical normal(-equivalent) |z| after the Bonferroni correction for ``n_tests``
        entries.
    n_tests : int
        Number of counted entries (the chi^2 degrees of freedom ``dof``).
    chi2, dof, p_value : float, int, float
        Sum of the squared normal-equivalent scores over counted entries, their number, and
        the chi^2 tail probability ``P(chi2_dof > chi2)`` (valid for independent entries
        only; informational).
    max_abs_z : float
        Largest plain |z| over counted entries (0 if there are none).
    max_abs_z_equiv : float
        Largest normal-equivalent |z| over counted entries: the score that decides.
    argmax : tuple or None
        ``(observable, t, index)`` of ``max_abs_z_equiv``.
    n_exact, n_nonfinite : int
        Entries that are exactly equal (excluded), entries with non-finite inputs (failures).
    passed : bool
        ``max_abs_z_equiv <= z_crit`` (each ``|z| <= crit``) and no non-finite entry.
    notes : list of str
        Caveats: differing problems, truncation to a common prefix, chi^2 tension.
    """

    label_a: str
    label_b: str
    observables: tuple[str, ...]
    times: np.ndarray
    values_a: dict[str, np.ndarray]
    values_b: dict[str, np.ndarray]
    se_a: dict[str, np.ndarray]
    se_b: dict[str, np.ndarray]
    z: dict[str, np.ndarray]
    counted: dict[str, np.ndarray]
    dof_a: float
    dof_b: float
    se_dof: dict[str, np.ndarray]
    z_equiv: dict[str, np.ndarray]
    crit: dict[str, np.ndarray]
    tails: str
    threshold: float
    z_crit: float
    n_tests: int
    chi2: float
    p_value: float
    max_abs_z: float
    max_abs_z_equiv: float
    argmax: tuple | None
    n_exact: int
    n_nonfinite: int
    passed: bool
    notes: list[str] = field(default_factory=list)

    @property
    def dof(self) -> int:
        """Degrees of freedom of chi^2 (the number of counted entries)."""
        return self.n_tests

    @property
    def verdict(self) -> str:
        """``"agree"`` or ``"disagree"``."""
        return "agree" if self.passed else "disagree"

    @property
    def chi2_per_dof(self) -> float:
        return self.chi2 / self.dof if self.dof else 0.0

    @property
    def _student(self) -> bool:
        return self.tails != "normal"

    # ------------------------------------------------------------------ text
    def summary(self) -> str:
        """The verdict line: the deciding entry, the critical value and which tails were used."""
        where, worst = "", f"max|z| = {self.max_abs_z:.3g}"
        if self.argmax is not None:
            name, t, idx = self.argmax
            where = f" at {name}{_fmt_index(idx)}, t={t}"
            if self._student:
                it = int(np.flatnonzero(self.times == t)[0])
                nu = self.se_dof[name][it][idx]
                worst = (f"worst |z| = {abs(self.z[name][it][idx]):.3g}{where} (Student-t, "
                         f"{nu:.3g} dof: normal-equivalent {self.max_abs_z_equiv:.3g})")
                where = ""
        tails = (f"normal-equivalent, Student-t tails with dof A {_fmt_dof(self.dof_a)}, "
                 f"B {_fmt_dof(self.dof_b)}, Welch per entry" if self._student
                 else "normal tails")
        line = (
            f"verdict: {self.verdict.upper()}  {worst}{where}; "
            f"critical |z| = {self.z_crit:.3g} ({tails}; threshold {self.threshold:g}, "
            f"Bonferroni over {self.n_tests} entries); chi2/dof = {self.chi2_per_dof:.3g} "
            f"(dof {self.dof}, p = {self.p_value:.3g})"
        )
        if self.n_nonfinite:
            line += f"; {self.n_nonfinite} non-finite entries"
        return line

    def table(self, entries: str = "worst") -> str:
        """Per-time table of values, standard errors and z.

        With Student-t tails two columns show each entry's Welch degrees of freedom and its
        critical |z|; ``*`` marks entries beyond their critical value.

        Parameters
        ----------
        entries : {"worst", "all"}
            ``"worst"``: one row per time and observable, the counted entry with the largest
            normal-equivalent |z|. ``"all"``: one row per counted (or exact) entry.
        """
        if entries not in ("worst", "all"):
            raise ValueError(f"entries must be 'worst' or 'all', got {entries!r}")
        extra = f"{'dof':>7}{'crit':>7}" if self._student else ""
        lines = [
            f"A: {self.label_a}",
            f"B: {self.label_b}",
            f"{'t':>3}  {'obs':<8}{'entry':<8}{'A':>25}  {'B':>25}{extra}  {'z':>8}",
        ]
        for it, t in enumerate(self.times):
            for name in self.observables:
                score = self.z_equiv[name][it]
                idxs = [tuple(i) for i in np.argwhere(_upper_mask(name, score.shape))]
                if entries == "worst" and len(idxs) > 1:
                    idxs = [max(idxs, key=lambda i: _abs_or_inf(score[i]))]
                for idx in idxs:
                    lines.append(self._row(name, it, t, idx))
        for note in self.notes:
            lines.append(f"note: {note}")
        lines.append(self.summary())
        return "\n".join(lines)

    def _row(self, name: str, it: int, t: int, idx: tuple) -> str:
        va, vb = self.values_a[name][it][idx], self.values_b[name][it][idx]
        sa, sb = self.se_a[name][it][idx], self.se_b[name][it][idx]
        z, crit = self.z[name][it][idx], self.crit[name][it][idx]
        exact = z == 0 and not self.counted[name][it][idx]
        zs = "exact" if exact else f"{z:+8.2f}"
        flag = "" if abs(z) <= crit else " *"  # marks nan too
        extra = (f"{_fmt_dof(self.se_dof[name][it][idx]):>7}{crit:>7.2f}" if self._student
                 else "")
        return (
            f"{t:>3}  {name:<8}{_fmt_index(idx):<8}{_fmt_pm(va, sa):>25}  "
            f"{_fmt_pm(vb, sb):>25}{extra}  {zs:>8}{flag}"
        )

    def __str__(self) -> str:
        return self.table("worst")

    def __repr__(self) -> str:
        return f"<dmft.compare Report: {self.summary()}>"

    # ------------------------------------------------------------------ figure
    def plot(self, observables: Sequence[str] | None = None):
        """Values (top row) and z-scores (bottom row) against t, one column per observable.

        With Student-t tails the bottom row shows the normal-equivalent scores, which share
        one critical value.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt  # optional dependency, imported on use
        from matplotlib.ticker import MaxNLocator

        names = tuple(self.observables if observables is None else observables)
        fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 6), squeeze=False,
                                 sharex=True)
        for col, name in enumerate(names):
            ax_v, ax_z = axes[0, col], axes[1, col]
            shape = self.z[name].shape[1:]
            idxs = [tuple(i) for i in np.argwhere(_upper_mask(name, shape))]
            for k, idx in enumerate(idxs):
                sel = (slice(None),) + idx
                color = f"C{k % 10}"
                label = f"{name}{_fmt_index(idx)}"
                ax_v.errorbar(self.times, self.values_a[name][sel], yerr=self.se_a[name][sel],
                              color=color, marker="o", ms=3, lw=1, capsize=2, label=f"{label} A")
                ax_v.errorbar(self.times, self.values_b[name][sel], yerr=self.se_b[name][sel],
                              color=color, marker="s", ms=3, ls="--", lw=1, capsize=2,
                              mfc="none", label=f"{label} B")
                score = self.z_equiv[name][sel]
                ax_z.plot(self.times, np.where(np.isfinite(score), score, np.nan), color=color,
                          marker="o", ms=3, lw=1)
            for sign in (-1, 1):
                ax_z.axhline(sign * self.z_crit, color="k", ls="--", lw=0.8,
                             label="critical |z|" if sign > 0 else None)
                ax_z.axhline(sign * self.threshold, color="k", ls=":", lw=0.8,
                             label="threshold" if sign > 0 else None)
            ax_z.legend(fontsize="x-small")
            ax_v.set_title(name)
            ax_v.legend(fontsize="x-small", ncol=2)
            ax_z.set_xlabel("t")
            ax_z.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax_z.set_ylabel("normal-equivalent z" if self._student else "z = (A - B) / SE")
        fig.suptitle(f"{self.verdict}: A = {self.label_a}  vs  B = {self.label_b}",
                     fontsize="small")
        fig.tight_layout()
        return fig


def _abs_or_inf(z: float) -> float:
    return np.inf if np.isnan(z) else abs(z)


def _fmt_index(idx: tuple) -> str:
    return "[" + ",".join(str(int(i)) for i in idx) + "]" if idx else ""


def _fmt_dof(dof: float) -> str:
    return "inf" if np.isinf(dof) else f"{dof:.3g}"


def _fmt_pm(value: float, se: float) -> str:
    return f"{value:.6g} ± {se:.2g}"


def _upper_mask(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """True on the entries of one time slice that are independent (upper triangle for Q)."""
    if name == "Q":
        P = shape[-1]
        return np.triu(np.ones((P, P), dtype=bool))
    return np.ones(shape, dtype=bool)


def _describe(traj: Trajectory) -> str:
    prov = traj.provenance
    keys = ("samples", "estimator", "d", "seeds", "replicas")
    details = ", ".join(f"{k}={prov[k]}" for k in keys if k in prov)
    return f"{traj.method} ({details})" if details else traj.method


# ----------------------------------------------------------------------------- compare
def compare(
    a: Trajectory,
    b: Trajectory,
    threshold: float = 3.0,
    observables: Sequence[str] = ("M", "Q"),
    t: int | Sequence[int] | None = None,
    *,
    atol: float = _EXACT_ATOL,
    dof_a: float | None = None,
    dof_b: float | None = None,
) -> Report:
    """Compare two trajectories entry by entry, with their standard errors.

    For every compared time t and entry, ``z = (a - b) / sqrt(se_a^2 + se_b^2)``. Entries where
    both standard errors are <= ``atol`` (deterministic values, e.g. M and Q at t = 0) are
    "exact" and excluded from the statistics when ``|a - b| <= atol``; otherwise they get a huge
    or infinite z and are flagged. Q is symmetric, so only its upper triangle is counted.

    Tails: a standard error estimated from R runs has R - 1 degrees of freedom, which makes z
    Student-t (with 16 replicas, P(|z| > 4) is ~20 times the normal value). The degrees of
    freedom of each side are read from its provenance (:func:`dmft.stats.dof_from_provenance`:
    DMFT ``replicas - 1``, simulations ``seeds - 1``, one-pass quasi-Monte Carlo
    ``qmc_replicas - 1``, 1/d extrapolations the smallest ``seeds - 1`` of their inputs, ``inf``
    for exact and quadrature results) and combined per entry by Welch-Satterthwaite. Each z is
    then mapped to its normal-equivalent score (the normal quantile with the same tail
    probability); with infinite degrees of freedom on both sides that score is z itself.

    Verdict: with N counted entries, the trajectories **agree** when the largest
    normal-equivalent |z| is at most ``z_crit = Phi^{-1}(1 - Phi(-threshold) / N)`` (and no
    value is non-finite); equivalently each |z| is within its Student-t critical value. By the
    union bound, two trajectories with equal means and correct standard errors are flagged
    with probability at most ``2 Phi(-threshold)`` (0.27 % for threshold 3), the same as a
    single ``|z| > threshold`` test, whatever the correlations between entries (strong across t
    in both DMFT and simulations). The chi^2 = sum of squared normal-equivalent scores over
    counted entries is reported with its chi^2_N tail probability; that p-value is exact only
    for independent entries, so a small p adds a note ("diffuse tension") instead of changing
    the verdict.

    Parameters
    ----------
    a, b : Trajectory
        Same P and K. Trajectories of different T are compared on their common prefix; other
        differences between the two problems are allowed (e.g. to show that a wrong eta is
        detected) and listed in ``report.notes``.
    threshold : float
        Family-wise significance in standard deviations, > 0.
    observables : sequence of str
        Any of ``"M"`` (T, P, K), ``"Q"`` (T, P, P), ``"e_train"`` (T,), ``"e_gen"`` (T,).
    t : int or sequence of int, optional
        Times to compare (0 <= t < common T); default all.
    atol : float
        Absolute tolerance of "exact" agreement for entries without standard error, >= 0.
    dof_a, dof_b : float, optional
        Degrees of freedom of the standard errors of ``a`` and ``b`` (> 0, ``math.inf`` for
        normal tails), overriding the provenance: for trajectories built by hand or loaded
        from elsewhere whose provenance does not record how their errors were estimated.

    Returns
    -------
    Report
        ``str(report)`` is a per-t table with the verdict line; ``report.plot()`` a figure.

    Examples
    --------
    >>> import dmft
    >>> prob = dmft.Problem(T=7)
    >>> report = dmft.compare(dmft.solve(prob, samples=10**5, seed=0, progress=False),
    ...                       dmft.solve(prob, method="one-pass"))  # doctest: +SKIP
    >>> report.verdict, report.tails  # doctest: +SKIP
    ('disagree', 'Student-t')
    """
    from scipy.special import chdtrc, ndtr, ndtri

    for name, traj in (("a", a), ("b", b)):
        if not isinstance(traj, Trajectory):
            raise TypeError(f"{name} must be a dmft.Trajectory, got {type(traj).__name__}")
    threshold = _positive("threshold", threshold)
    if isinstance(atol, bool) or not isinstance(atol, numbers.Real) or not atol >= 0:
        raise ValueError(f"atol must be a number >= 0, got {atol!r}")
    dof_a = _dof("dof_a", dof_a, a)
    dof_b = _dof("dof_b", dof_b, b)
    if isinstance(observables, str):
        observables = (observables,)
    observables = tuple(observables)
    bad = [o for o in observables if o not in OBSERVABLES]
    if bad or not observables:
        raise ValueError(f"observables={observables!r} is not valid; allowed: {OBSERVABLES}")
    pa, pb = a.problem, b.problem
    if (pa.P, pa.K) != (pb.P, pb.K):
        raise ValueError(
            f"cannot compare trajectories of different sizes: (P, K) = {(pa.P, pa.K)} vs "
            f"{(pb.P, pb.K)}"
        )
    notes = []
    diffs = problem_differences(pa, pb)
    if diffs:
        notes.append("the problems differ: " + "; ".join(diffs))
    if pa.is_flow or pb.is_flow:
        a, b = _on_common_times(a, b, notes)
    T = min(a.T, b.T)
    if a.T != b.T:
        notes.append(f"T differs ({a.T} vs {b.T}): compared on the common prefix t < {T}")
    times = _select_times(t, T)

    values_a, values_b, se_a, se_b, zs, counted = {}, {}, {}, {}, {}, {}
    se_dof, z_equiv = {}, {}
    n_exact = n_nonfinite = 0
    for name in observables:
        va, vb = getattr(a, name)[times], getattr(b, name)[times]
        sa, sb = getattr(a, name + "_se")[times], getattr(b, name + "_se")[times]
        z, exact, finite = _z_scores(va, vb, sa, sb, atol)
        independent = np.broadcast_to(_upper_mask(name, va.shape[1:]), va.shape)
        values_a[name], values_b[name], se_a[name], se_b[name], zs[name] = va, vb, sa, sb, z
        counted[name] = independent & finite & ~exact
        se_dof[name] = np.where(exact, np.inf, welch_dof(sa, dof_a, sb, dof_b))
        z_equiv[name] = np.sign(z) * normal_equivalent(z, se_dof[name])
        n_exact += int(np.sum(independent & exact))
        n_nonfinite += int(np.sum(independent & ~finite))

    n_tests = int(sum(np.sum(c) for c in counted.values()))
    crit = {name: critical_value(threshold, n_tests, np.where(np.isnan(nu), np.inf, nu))
            for name, nu in se_dof.items()}
    all_z = (np.concatenate([z_equiv[n][counted[n]] for n in observables]) if n_tests
             else np.zeros(0))
    chi2 = float(np.sum(all_z**2))
    p_value = float(chdtrc(n_tests, chi2)) if n_tests else 1.0
    z_crit = float(-ndtri(family_tail(threshold, n_tests) / 2)) if n_tests else threshold
    max_abs_z = max((float(np.max(np.abs(zs[n][counted[n]]))) for n in observables
                     if np.any(counted[n])), default=0.0)
    max_abs_z_equiv, argmax = 0.0, None
    for name in observables:
        if not np.any(counted[name]):
            continue
        score = np.where(counted[name], np.abs(z_equiv[name]), -1.0)
        flat = int(np.argmax(score))
        if score.flat[flat] > max_abs_z_equiv or argmax is None:
            pos = np.unravel_index(flat, score.shape)
            max_abs_z_equiv = float(score.flat[flat])
            argmax = (name, int(times[pos[0]]), tuple(int(i) for i in pos[1:]))
    student = any(np.any(np.isfinite(se_dof[n][counted[n]])) for n in observables)
    passed = n_nonfinite == 0 and max_abs_z_equiv <= z_crit
    if n_nonfinite:
        notes.append(f"{n_nonfinite} entries have non-finite values or standard errors")
    if passed and n_tests and p_value < 2 * ndtr(-threshold):
        notes.append(
            f"chi2/dof = {chi2 / n_tests:.3g} (p = {p_value:.2g}) suggests a diffuse tension; "
            "not part of the verdict because entries are correlated across time"
        )
    return Report(
        label_a=_describe(a), label_b=_describe(b), observables=observables, times=times,
        values_a=values_a, values_b=values_b, se_a=se_a, se_b=se_b, z=zs, counted=counted,
        dof_a=dof_a, dof_b=dof_b, se_dof=se_dof, z_equiv=z_equiv, crit=crit,
        tails="Student-t" if student else "normal", threshold=threshold, z_crit=z_crit,
        n_tests=n_tests, chi2=chi2, p_value=p_value, max_abs_z=max_abs_z,
        max_abs_z_equiv=max_abs_z_equiv, argmax=argmax, n_exact=n_exact,
        n_nonfinite=n_nonfinite, passed=passed, notes=notes,
    )


def _on_common_times(a: Trajectory, b: Trajectory, notes: list) -> tuple[Trajectory, Trajectory]:
    """Gradient flow on different grids (dt): both restricted to the times they share."""
    n = min(a.T, b.T)
    if np.allclose(a.time[:n], b.time[:n], rtol=1e-9, atol=1e-12):
        return a, b
    shared = [t for t in a.time if matching_indices(b.time, np.array([t])) is not None]
    if not shared:
        raise ValueError(f"the two trajectories share no time point (times {a.time[:4]}... "
                         f"and {b.time[:4]}...)")
    notes.append(f"time grids differ (steps {np.diff(a.time[:2])} vs {np.diff(b.time[:2])}): "
                 f"compared at the {len(shared)} shared times")
    return a.at_times(shared), b.at_times(shared)


def _dof(name: str, value, traj: Trajectory) -> float:
    """Degrees of freedom of ``traj``'s standard errors: the override or its provenance's."""
    if value is None:
        return dof_from_provenance(traj.provenance)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be a number > 0 (math.inf for normal tails) or None, "
                         f"got {value!r}")
    return float(value)


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _select_times(t, T: int) -> np.ndarray:
    if t is None:
        return np.arange(T)
    times = np.atleast_1d(np.asarray(t))
    if times.ndim != 1 or times.size == 0 or times.dtype.kind not in "iu":
        raise ValueError(f"t must be an integer or a non-empty sequence of integers, got {t!r}")
    if np.any((times < 0) | (times >= T)):
        raise ValueError(f"t={t!r} out of range: times must be in [0, {T - 1}] (common prefix)")
    return times.astype(int)


def _z_scores(va, vb, sa, sb, atol: float):
    """z, exact mask and finite mask for arrays of values and standard errors."""
    z = z_scores(va, sa, vb, sb, atol)
    finite = ~np.isnan(z)
    with np.errstate(invalid="ignore", over="ignore"):
        exact = finite & (np.hypot(sa, sb) <= atol) & (np.abs(va - vb) <= atol)
    return z, exact, finite
