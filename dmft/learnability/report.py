"""The learnability report of a target: :func:`analyze` and the printable
:class:`LearnabilityReport` (``dmft analyze TARGET`` on the command line)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from ..activations import Activation
from ..problem import Problem
from ..targets import Target
from ..validation import integer
from .hermite import hermite_coefficients, hermite_tensor_coefficients
from .leap import LeapResult, _leap_from, leap_exponent
from .quadrature import (
    _check_K,
    _fix_signs,
    _grids,
    _node_counts,
    _target_of,
    _tolerance,
)
from .step1 import _first_hermite, mean_activation_derivative, step1_overlap
from .subspaces import (
    Subspace,
    SubspaceSequence,
    learned_subspaces,
    moment_subspace,
    moment_vectors,
)
from .symmetry import (
    GENERIC_STUDENT,
    StudentSymmetry,
    is_even_symmetric,
    orthogonal_even_partner,
    student_symmetry,
)

__all__ = ["DirectionVerdict", "LearnabilityReport", "analyze"]


@dataclass
class DirectionVerdict:
    """Verdicts for one direction v of R^K.

    Attributes
    ----------
    name : str
    v : ndarray, shape (K,)
        Unit vector.
    information_exponent : int or None
        Along v, up to the report's ``max_degree`` (None = none found).
    hermite : ndarray, shape (max_degree + 1,)
        c_k(v) = E[g* He_k(<v,z>)] / sqrt(k!).
    first_moment : int or None
        Smallest k <= k_max with E[g*^k <v,z>] != 0.
    one_pass_step, multi_pass_step : int or None
        First GD step with a non-zero overlap along v (None: not in O(1) steps), for the
        report's student.
    hard_fraction : float
        |component of v in the hard subspace|^2 (1 = entirely hard, 0 = entirely learned).
    even_symmetric : bool
    partner : ndarray of shape (K,) or None
        w making v orthogonally-even-symmetric (see :func:`orthogonal_even_partner`).
    one_pass_reason, multi_pass_reason : str
    generic_one_pass_step, generic_multi_pass_step : int or None
        The same steps for a generic student (equal to the above without a Problem).
    """

    name: str
    v: np.ndarray
    information_exponent: int | None
    hermite: np.ndarray
    first_moment: int | None
    one_pass_step: int | None
    multi_pass_step: int | None
    hard_fraction: float
    even_symmetric: bool
    partner: np.ndarray | None
    one_pass_reason: str = ""
    multi_pass_reason: str = ""
    generic_one_pass_step: int | None = None
    generic_multi_pass_step: int | None = None

    @property
    def one_pass(self) -> str:
        """Short one-pass verdict."""
        return _verdict(self.one_pass_step, "not in O(1) steps")

    @property
    def multi_pass(self) -> str:
        """Short multi-pass verdict."""
        return _verdict(self.multi_pass_step, "never (hard)")


def _verdict(step, never: str) -> str:
    return never if step is None else f"learned, step {step}"


@dataclass
class LearnabilityReport:
    """Everything :func:`analyze` finds about one target; ``print(report)`` shows a table.

    Attributes
    ----------
    target : Target
    k_max, cond_degree, max_degree, leap_degree : int
        Truncation degrees used (moments in y, conditioning polynomials in z_U, Hermite
        degree for information exponents, Hermite degree for the leap).
    nodes : tuple of int
        (fine, coarse, coarser) Gauss-Hermite nodes per axis.
    C1, C1_error : ndarray, shape (K,)
        First Hermite vector E[g* z] and its quadrature error.
    moments : Subspace
        Two-step test: span{E[g*^k z], k <= k_max}.
    one_pass, multi_pass : SubspaceSequence
        Learned subspaces step by step, for the report's student.
    hard : ndarray, shape (K, h)
        Orthonormal basis of the hard subspace (complement of the final multi-pass one).
    leap_standard, leap_learning : LeapResult
        Leap in the standard basis and in the learning basis (columns: generic multi-pass
        directions in the order learned, then the target's hard directions).
    directions : list of DirectionVerdict
    problem : Problem or None
    M1 : ndarray of shape (P, K) or None
        Closed-form step-1 overlap when a Problem (with M0 = 0) was given.
    mean_dsigma : ndarray of shape (P,) or None
        E[sigma'(h0_j)] entering M1.
    student : StudentSymmetry
        Student parities used for ``one_pass``, ``multi_pass`` and ``hard``.
    generic_one_pass, generic_multi_pass : SubspaceSequence
        The same for a generic student (target properties only).
    target_hard : ndarray, shape (K, h')
        Hard subspace for a generic student (contained in ``hard``).
    """

    target: Target
    k_max: int
    cond_degree: int
    max_degree: int
    leap_degree: int
    nodes: tuple
    C1: np.ndarray
    C1_error: np.ndarray
    moments: Subspace
    one_pass: SubspaceSequence
    multi_pass: SubspaceSequence
    hard: np.ndarray
    leap_standard: LeapResult
    leap_learning: LeapResult
    directions: list = field(default_factory=list)
    problem: Problem | None = None
    M1: np.ndarray | None = None
    mean_dsigma: np.ndarray | None = None
    student: StudentSymmetry = GENERIC_STUDENT
    generic_one_pass: SubspaceSequence | None = None
    generic_multi_pass: SubspaceSequence | None = None
    target_hard: np.ndarray | None = None

    def direction(self, name: str) -> DirectionVerdict:
        """The verdict for a named direction ("e1", "C1", "C1_perp", "multi-pass step 2 #1"...)."""
        for d in self.directions:
            if d.name == name:
                return d
        raise KeyError(f"no direction named {name!r}; have {[d.name for d in self.directions]}")

    def verdict(self, v: ArrayLike) -> tuple[int | None, int | None]:
        """(one-pass step, multi-pass step) at which the overlap along an arbitrary v starts."""
        return (self.one_pass.first_step(v, self.one_pass.direction_tol),
                self.multi_pass.first_step(v, self.multi_pass.direction_tol))

    def __str__(self) -> str:
        return _format_report(self)


def _vec(v, digits: int = 3) -> str:
    return "[" + ", ".join(f"{x:+.{digits}f}" for x in np.asarray(v).ravel()) + "]"


def _leap_str(res: LeapResult) -> str:
    if res.leap is None:
        s = f"undetermined (no non-zero coefficient up to degree {res.degree})"
    else:
        s = str(res.leap)
    if res.undetected:
        s += (f"; coordinates {[k + 1 for k in res.undetected]} appear only beyond degree "
              f"{res.degree}, so the true leap may be larger")
    return s


def _format_report(rep: LearnabilityReport) -> str:
    K = rep.target.K
    lines = [
        f"Learnability of target {rep.target.name!r} (K = {K}); student: "
        f"{_student_text(rep.student)}",
        f"  truncation: moments in y up to k_max = {rep.k_max}, conditioning polynomials in "
        f"z_U up to degree {rep.cond_degree}, Hermite degree {rep.max_degree}; "
        f"Gauss-Hermite nodes per axis {rep.nodes[0]} (error = largest difference to "
        f"{rep.nodes[1]} and {rep.nodes[2]})",
        f"  C_1 = E[g* z] = {_vec(rep.C1, 5)}  (quadrature error {rep.C1_error.max():.1e})",
        f"  leap exponent (standard basis, degree <= {rep.leap_degree}): "
        f"{_leap_str(rep.leap_standard)}",
        f"  leap exponent (learning basis, degree <= {rep.leap_degree}): "
        f"{_leap_str(rep.leap_learning)}",
        f"  two-step test span{{E[g*^k z], k <= {rep.k_max}}}: dimension {rep.moments.dim}"
        + (f", strengths {_vec(rep.moments.strength, 4)}" if rep.moments.dim else "")
        + f" (rank tolerance {rep.moments.tol:.1e})",
    ]
    for seq in (rep.one_pass, rep.multi_pass):
        parts = []
        for t, sub in enumerate(seq.new, start=1):
            if sub.dim:
                dirs = ", ".join(_vec(sub.basis[:, j], 3) for j in range(sub.dim))
                parts.append(f"step {t}: +{sub.dim} ({dirs}; strength "
                             f"{_vec(sub.strength, 4)})")
        dim = seq.basis().shape[1]
        lines.append(f"  {seq.kind} subspaces: " + ("; ".join(parts) if parts else "none")
                     + f"  -> final dimension {dim} of {K}")
    if rep.hard.shape[1]:
        lines.append("  hard subspace (never learned in O(1) steps): "
                     + ", ".join(_vec(rep.hard[:, j]) for j in range(rep.hard.shape[1])))
    else:
        lines.append("  hard subspace: none")
    if rep.M1 is not None:
        lines.append(f"  step-1 overlap for {rep.problem!r}: E[sigma'(h0)] = "
                     f"{_vec(rep.mean_dsigma, 4)}; M_1 rows:")
        for j, row in enumerate(rep.M1):
            lines.append(f"    unit {j}: {_vec(row, 5)}  (|row| = {np.linalg.norm(row):.4f})")
    header = f"  {'direction':<24} {'v':<{9 * K + 2}} {'IE':>4}  {'one-pass':<20} multi-pass"
    lines += ["", header, "  " + "-" * (len(header) - 2)]
    for d in rep.directions:
        ie = "-" if d.information_exponent is None else str(d.information_exponent)
        lines.append(f"  {d.name:<24} {_vec(d.v):<{9 * K + 2}} {ie:>4}  {d.one_pass:<20} "
                     f"{d.multi_pass}")
    lines.append("")
    lines.append("  reasons:")
    for d in rep.directions:
        lines.append(f"  {d.name}:")
        lines.append(f"    one-pass:   {d.one_pass_reason}")
        lines.append(f"    multi-pass: {d.multi_pass_reason}")
    return "\n".join(lines)


def _first_nonzero_moment(v, moments, errors, scales) -> int | None:
    proj = moments @ v
    err = np.abs(errors) @ np.abs(v)
    nonzero = np.abs(proj) > _tolerance(err, scales)
    hits = np.flatnonzero(nonzero)
    return int(hits[0]) + 1 if hits.size else None


def _direction_list(K, C1, C1_tol, multi: SubspaceSequence, hard: np.ndarray):
    """Basis directions, C_1 and its complement (K = 2), principal learned/hard directions."""
    named: list[tuple[str, np.ndarray]] = [(f"e{i + 1}", np.eye(K)[i]) for i in range(K)]
    if np.linalg.norm(C1) > C1_tol:
        c = C1 / np.linalg.norm(C1)
        named.append(("C1", c))
        if K == 2:
            named.append(("C1_perp", _fix_signs(np.array([[-c[1]], [c[0]]]))[:, 0]))
    for t, sub in enumerate(multi.new, start=1):
        for j in range(sub.dim):
            named.append((f"multi-pass step {t} #{j + 1}", sub.basis[:, j]))
    for j in range(hard.shape[1]):
        named.append((f"hard #{j + 1}", hard[:, j]))
    out: list[tuple[str, np.ndarray]] = []
    for name, v in named:
        if all(abs(v @ w) < 1 - 1e-9 for _, w in out):
            out.append((name, v))
    return out


def _hard_basis(K: int, learned: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the complement of ``learned``, aligned with coordinate axes when
    possible (projected axes, Gram-Schmidt) so that e.g. span(e1, e2, e3) reads as such."""
    P = np.eye(K) - learned @ learned.T
    cols: list[np.ndarray] = []
    for i in range(K):
        c = P[:, i].copy()
        for b in cols:
            c -= b * (b @ c)
        if np.linalg.norm(c) > 1e-6:
            cols.append(c / np.linalg.norm(c))
        if len(cols) == K - learned.shape[1]:
            break
    return _fix_signs(np.array(cols).T) if cols else np.zeros((K, 0))


def analyze(target: str | Target | Problem, *, activation: str | Activation | None = None,
            k_max: int = 4, cond_degree: int = 2, max_degree: int = 6, leap_degree: int = 4,
            nodes: int | None = None, seed: int = 0) -> LearnabilityReport:
    """Learnability analysis of a target (docs/theory/learnability.md).

    Parameters
    ----------
    target : str, Target or Problem
        With a Problem the verdicts are for its student (activation parities, see
        :func:`student_symmetry`) and, if M0 = 0, the report contains the closed-form M_1.
    activation : str or Activation, optional
        Student activation when ``target`` is not a Problem; default a generic student.
    k_max : int
        Largest power of y in the moments / multi-pass features (1..12).
    cond_degree : int
        Largest degree of the polynomials in the learned coordinates z_U (0..4).
    max_degree : int
        Largest Hermite degree for information exponents (1..20).
    leap_degree : int
        Truncation degree of the multi-index expansion for the leap (1..8).
    nodes : int, optional
        Gauss-Hermite nodes per axis of the fine rule (default :data:`DEFAULT_NODES`).
    seed : int
        Seed of the random points used by the symmetry checks.

    Returns
    -------
    LearnabilityReport

    Examples
    --------
    >>> report = analyze("he3", nodes=40)  # a generic student
    >>> report.direction("e1").one_pass, report.direction("e1").multi_pass
    ('not in O(1) steps', 'learned, step 2')
    >>> report.verdict([1.0])  # (one-pass step, multi-pass step)
    (None, 2)
    """
    problem = target if isinstance(target, Problem) else None
    if problem is not None:
        if activation is not None:
            raise TypeError("pass either a Problem or an activation, not both")
        activation = problem.activation
    tgt = _target_of(target)
    K = _check_K(tgt.K)
    k_max = integer("k_max", k_max, 1, 12)
    cond_degree = integer("cond_degree", cond_degree, 0, 4)
    max_degree = integer("max_degree", max_degree, 1, 20)
    leap_degree = integer("leap_degree", leap_degree, 1, 8)
    node_counts = _node_counts(K, nodes)
    student = GENERIC_STUDENT if activation is None else student_symmetry(activation)

    C1, C1_err = _first_hermite(tgt, nodes)
    norm = _grids(tgt, nodes)[0].norm
    C1_tol = float(np.linalg.norm(_tolerance(C1_err, norm)))
    moments_sub = moment_subspace(tgt, k_max, nodes)
    closures = {}
    for kind in ("one-pass", "multi-pass"):
        closures[kind, "generic"] = learned_subspaces(tgt, kind, k_max, cond_degree, nodes)
        closures[kind, "student"] = (
            closures[kind, "generic"] if activation is None else
            learned_subspaces(tgt, kind, k_max, cond_degree, nodes, activation=activation))
    target_hard = _hard_basis(K, closures["multi-pass", "generic"].basis())
    hard = _hard_basis(K, closures["multi-pass", "student"].basis())
    # one multi-index expansion serves the leap and (by the Hermite addition formula) the
    # coefficients along every reported direction, when it is not too large
    along_degree = max(max_degree, leap_degree)
    if math.comb(along_degree + K, K) <= 300:
        expansion = hermite_tensor_coefficients(tgt, along_degree, None, nodes)
    else:
        expansion = hermite_tensor_coefficients(tgt, leap_degree, None, nodes)
    leap_std = _leap_from(tgt, expansion, leap_degree)
    learning_basis = np.concatenate([closures["multi-pass", "generic"].basis(), target_hard],
                                    axis=1)
    leap_learn = leap_exponent(tgt, leap_degree, learning_basis, nodes)
    moments = moment_vectors(tgt, k_max, nodes)

    directions = []
    for name, v in _direction_list(K, C1, C1_tol, closures["multi-pass", "generic"], hard):
        directions.append(_judge(tgt, name, v, C1, norm, closures, student, target_hard, hard,
                                 moments, max_degree, nodes, seed, expansion))

    M1 = dsig = None
    if problem is not None and not np.any(problem.M0 != 0):
        dsig = np.array([mean_activation_derivative(problem.activation, q)
                         for q in np.diag(problem.Q0)])
        M1 = step1_overlap(problem)
    return LearnabilityReport(
        tgt, k_max, cond_degree, max_degree, leap_degree, node_counts, C1, C1_err, moments_sub,
        closures["one-pass", "student"], closures["multi-pass", "student"], hard, leap_std,
        leap_learn, directions, problem, M1, dsig, student,
        closures["one-pass", "generic"], closures["multi-pass", "generic"], target_hard)


def _student_text(sym: StudentSymmetry) -> str:
    parts = {"odd": "sigma odd", "even": "sigma even", None: "sigma neither odd nor even"}
    dpart = {"constant": "sigma' constant", "const+odd": "sigma' = constant + odd",
             "odd": "sigma' odd", "even": "sigma' even", "mixed": "sigma' of mixed parity"}
    return f"{sym.name} ({parts[sym.sigma]}, {dpart[sym.dsigma]})"


def _judge(tgt, name, v, C1, norm, closures, student, target_hard, hard, moments, max_degree,
           nodes, seed, expansion) -> DirectionVerdict:
    if expansion.indices.sum(axis=1).max() >= max_degree:
        coef, err = expansion.along(v)
        coef, err = coef[: max_degree + 1], err[: max_degree + 1]
    else:
        coef, err = hermite_coefficients(tgt, v, max_degree, nodes)
    nonzero = np.abs(coef) > _tolerance(err, norm)
    ie = next((k for k in range(1, max_degree + 1) if nonzero[k]), None)
    k_mom = _first_nonzero_moment(v, *moments)
    steps = {key: seq.first_step(v, seq.direction_tol) for key, seq in closures.items()}
    t_one, t_multi = steps["one-pass", "student"], steps["multi-pass", "student"]
    g_one, g_multi = steps["one-pass", "generic"], steps["multi-pass", "generic"]
    hard_frac = float(np.linalg.norm(hard.T @ v) ** 2) if hard.shape[1] else 0.0
    target_hard_frac = (float(np.linalg.norm(target_hard.T @ v) ** 2)
                        if target_hard.shape[1] else 0.0)
    even = is_even_symmetric(tgt, v, seed=seed)
    partner = None
    if target_hard_frac > 1 - 1e-9 and not even:
        partner = orthogonal_even_partner(tgt, v, within=target_hard, seed=seed)
    c1_along = float(C1 @ v)
    ie_txt = f"none up to degree {max_degree}" if ie is None else str(ie)
    stu = _student_text(student)

    # ---- one-pass reason
    if t_one == 1:
        r1 = (f"C_1 = E[g* z] has a component {c1_along:+.4f} along v (IE = 1): the first "
              "gradient step moves along v")
    elif t_one is not None:
        r1 = (f"E[g* <v,z>] = {c1_along:+.1e} (IE {ie_txt}); reached at step {t_one} through "
              "the staircase E[y q(z_U) <v,z>] != 0, U = subspace learned before")
    elif g_one is not None:
        r1 = (f"a generic student reaches v at step {g_one} through the staircase "
              f"E[y q(z_U) <v,z>] != 0, but for {stu} q = E[sigma'(h) | z_U] has a parity "
              "for which these moments vanish: not in O(1) steps")
    else:
        r1 = (f"IE {ie_txt} along v and no staircase from the learned directions: "
              "one-pass SGD (n = O(d) per step) does not move along v in O(1) steps")
    # ---- multi-pass reason
    if t_multi == 1:
        r2 = f"C_1 has a component {c1_along:+.4f} along v: learned at the first step"
    elif t_multi is not None:
        why = (f"E[g*^{k_mom} <v,z>] != 0 (k = {k_mom}): reusing the batch makes the "
               "gradient a non-linear function of y" if k_mom is not None and k_mom > 1 else
               "a conditional moment E[p(y, z_U) <v,z>] != 0 given the learned coordinates "
               "z_U (staircase)")
        r2 = f"C_1 . v = {c1_along:+.1e} but {why}; overlap appears at step {t_multi}"
        if hard_frac > 1e-9:
            r2 += f"; a fraction {hard_frac:.3f} of |v|^2 lies in the hard subspace"
    elif g_multi is not None:
        r2 = (f"a generic student learns v at step {g_multi}, but for {stu} E[F | y, z_U] has "
              "a parity for which every E[F <v,z>] vanishes (symmetry of the whole process "
              "from M_0 = 0): never learned with this activation")
    elif even:
        r2 = ("even-symmetric: g*(R_v z) = g*(z), so every E[phi(y, z_U) <v,z>] vanishes: "
              "never learned in O(1) steps (M_0 = 0)")
    elif partner is not None:
        r2 = (f"orthogonally-even-symmetric: g*(R_w R_v z) = g*(z) with w = {_vec(partner)} "
              "orthogonal to v and to the learned subspace: never learned in O(1) steps")
    else:
        r2 = ("in the hard subspace: no polynomial moment E[p(y, z_U) <v,z>] (degrees "
              "k_max / cond_degree) is non-zero; no reflection symmetry found along this "
              "particular v (a combination of symmetric directions)")
    return DirectionVerdict(name, v, ie, coef, k_mom, t_one, t_multi, hard_frac, even, partner,
                            r1, r2, g_one, g_multi)
