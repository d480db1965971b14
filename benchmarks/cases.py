"""The four validation cases (docs/validation.md) with their solver-independent references.

Each :class:`Case` holds a :class:`dmft.Problem`, a reference :class:`dmft.Trajectory` (exact
closed forms, quoted simulations, or our own finite-d simulations, at one d or extrapolated in
1/d), which observables and times are compared, and the sample sizes used by the quick and full
benchmark runs. Nothing here calls the DMFT solver: the references must stay independent of the
code under test.

Reference data live in ``data/reference`` in the repository (made by ``data/make_reference.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import dmft
from dmft.exact import linear_gd
from solvers.numerics.gauss_hermite import gauss_hermite

__all__ = ["Case", "CASES", "reference_dir", "get_cases", "relu_first_step"]

_FULL_GRID = (10**4, 3 * 10**4, 10**5, 3 * 10**5, 10**6, 3 * 10**6, 10**7)


def reference_dir() -> Path:
    """Directory holding the project's reference ``.npz`` files (``data/reference``)."""
    return Path(__file__).resolve().parents[1] / "data" / "reference"


@dataclass(frozen=True)
class Case:
    """One accuracy case.

    Attributes
    ----------
    name : str
        Short identifier used in result ids (``accuracy/<name>/<estimator>/S=<samples>``).
    title : str
        One line for tables and figures.
    problem : dmft.Problem
    reference : dmft.Trajectory
        Values and standard errors the DMFT is compared with (zero SE for exact values); its
        provenance says how many seeds the standard errors come from, which fixes their
        degrees of freedom in ``dmft.compare``.
    observables : tuple of str
        Compared observables (``dmft.compare`` names).
    times : tuple of int
        Compared time points.
    estimators : tuple of str
        Estimators valid for this case ("pathwise" is refused for ReLU).
    quick_samples : int
        Sample size of the ``--quick`` run (chosen so the broken solver variants are caught
        with a wide margin; see ``benchmarks/README`` section in the top-level README).
    full_samples : dict of str -> tuple of int
        Sample-size grid of the ``--full`` run, per estimator.
    note : str
        How the reference was obtained, and any special handling.
    """

    name: str
    title: str
    problem: dmft.Problem
    reference: dmft.Trajectory
    observables: tuple[str, ...]
    times: tuple[int, ...]
    estimators: tuple[str, ...]
    quick_samples: int
    full_samples: dict = field(default_factory=dict)
    note: str = ""

    def samples(self, mode: str, estimator: str) -> tuple[int, ...]:
        """Sample sizes run for ``mode`` ("quick" or "full") and ``estimator``."""
        if mode == "quick":
            return (self.quick_samples,)
        return tuple(self.full_samples[estimator])


# ----------------------------------------------------------------------------- exact linear
def _linear_case() -> Case:
    prob = dmft.Problem(target="linear", P=1, activation="linear", alpha=3.0, eta=0.2, T=7,
                        a=[1.0])
    return Case(
        name="linear", title="exact linear case (P=K=1, alpha 3, eta 0.2, T 7)",
        problem=prob, reference=linear_gd(prob), observables=("M", "Q", "e_train"),
        times=tuple(range(1, prob.T)), estimators=("stein", "pathwise"),
        quick_samples=10**5,
        full_samples={"stein": _FULL_GRID, "pathwise": _FULL_GRID[:-2]},
        note="exact closed forms (Marchenko-Pastur moments, exact rationals; dmft.exact): the "
             "error keeps falling as S grows",
    )


# ----------------------------------------------------------------------------- smooth tanh
_TANH_SIMS = {2: (0.7569, 0.0019), 3: (0.8336, 0.0011), 5: (0.8934, 0.0008)}


def _tanh_case() -> Case:
    prob = dmft.Problem(target="tanh", P=1, activation="tanh", alpha=3.0, eta=0.5, T=6,
                        a=[1.0])
    M = np.full((prob.T, 1, 1), np.nan)
    M_se = np.full((prob.T, 1, 1), np.nan)
    for t, (m, se) in _TANH_SIMS.items():
        M[t], M_se[t] = m, se
    nan = np.full((prob.T, 1, 1), np.nan)
    ref = dmft.Trajectory(problem=prob, M=M, M_se=M_se, Q=nan, Q_se=nan,
                          e_train=np.full(prob.T, np.nan), e_gen=np.full(prob.T, np.nan),
                          provenance={"method": "quoted simulations (docs/validation.md)",
                                      "d": 3000, "seeds": 12})
    return Case(
        name="tanh", title="smooth tanh case (P=K=1, alpha 3, eta 0.5)",
        problem=prob, reference=ref, observables=("M",), times=tuple(_TANH_SIMS),
        estimators=("stein", "pathwise"), quick_samples=3 * 10**5,
        full_samples={"stein": _FULL_GRID[:-1], "pathwise": _FULL_GRID[:-2]},
        note="quoted simulations (d = 3000, 12 seeds; docs/validation.md) of M at t = 2, 3, 5",
    )


# ----------------------------------------------------------------------------- paper ReLU
def _seed_mean(problem: dmft.Problem, data, d: int, runs: dict) -> dmft.Trajectory:
    """Mean and standard error over the seeds of a reference file (``runs``: name -> key)."""
    return dmft.Trajectory.from_runs(
        problem, {name: data[key] for name, key in runs.items()},
        {"method": "finite-d (reference file)", "d": d, "seed": None}, count="seeds")


def _relu_case(ref_dir: Path) -> Case:
    prob = dmft.Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=7)
    data = np.load(ref_dir / "sims_tanh-he1-he3_alpha3_eta0.2_T7_d5000.npz")
    ref = _seed_mean(prob, data, 5000, {"M": "M_d5000", "Q": "Q_d5000", "e_gen": "gen_d5000"})
    seeds = ref.provenance["seeds"]
    return Case(
        name="relu", title="paper ReLU case (P=K=2, alpha 3, eta 0.2, T 7) vs d=5000 sims",
        problem=prob, reference=ref, observables=("M", "Q"), times=tuple(range(1, prob.T)),
        estimators=("stein",), quick_samples=3 * 10**5,
        full_samples={"stein": _FULL_GRID[:-1]},
        note=f"our simulations, d = 5000, {seeds} seeds (mean and SE over seeds), the setting "
             "of the authors' published ones; t = 0 is the exact initialisation and is not "
             "compared; pathwise is refused for ReLU",
    )


# ----------------------------------------------------------------------------- sharp case
def relu_first_step(problem: dmft.Problem, nodes: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Exact M_1 and Q_1 of a ReLU committee started at M_0 = 0, Q_0 = I, lambda = 0.

    At t = 0 the pre-activations h ~ N(0, I_P) are independent of z, so every h-expectation
    factorises into one-dimensional ReLU moments (closed forms) and the target enters through
    E[y], E[y^2], E[y z] (tensor Gauss-Hermite, ``nodes`` per axis; K <= 2). With
    F = -(y - f) a * 1(h > 0), C00 = alpha E[F F^T], Lam0 = alpha E[J] (Dirac part of relu''
    included) and M_1 = -eta alpha E[F z^T]:
    Q_1 = (I - eta Lam0)(I - eta Lam0)^T + eta^2 C00 + M_1 M_1^T   (one step of the DMFT,
    docs/theory/dmft.md).

    Returns
    -------
    M1 : (P, K); Q1 : (P, P)
    """
    if problem.activation.name != "relu" or problem.K > 2 or problem.lam != 0:
        raise ValueError("relu_first_step needs a ReLU student, K <= 2 and lam = 0")
    if np.any(problem.M0 != 0) or np.any(problem.Q0 != np.eye(problem.P)):
        raise ValueError("relu_first_step needs M0 = 0 and Q0 = I")
    P, K, a = problem.P, problem.K, problem.a
    alpha, eta = problem.alpha, problem.eta
    x, w = gauss_hermite(nodes)
    grids = np.meshgrid(*([x] * K), indexing="ij")
    wz = np.prod(np.meshgrid(*([w] * K), indexing="ij"), axis=0).ravel()
    Z = np.stack([g.ravel() for g in grids])
    y = problem.target(Z)
    Ey, Ey2, Eyz = wz @ y, wz @ y**2, Z @ (wz * y)
    inv_sqrt_2pi = 1.0 / math.sqrt(2.0 * math.pi)

    def moment(power: np.ndarray, indicator: np.ndarray) -> float:
        """E[prod_i relu(h_i)^power_i 1(h_i > 0)^indicator_i], h_i iid N(0, 1)."""
        out = 1.0
        for p_i, ind in zip(power, indicator, strict=True):
            out *= (0.5 if ind else 1.0) if p_i == 0 else (inv_sqrt_2pi if p_i == 1 else 0.5)
        return out

    unit = np.eye(P, dtype=int)
    C00 = np.empty((P, P))
    lam0 = np.empty((P, P))
    for j in range(P):
        for k in range(P):
            ind = np.minimum(unit[j] + unit[k], 1)
            zero = np.zeros(P, dtype=int)
            E_f = sum(a[i] * moment(unit[i], ind) for i in range(P))
            E_f2 = sum(a[i] * a[m] * moment(unit[i] + unit[m], ind)
                       for i in range(P) for m in range(P))
            # y is independent of h: E[(y - f)^2 1_j 1_k] = E[y^2] E[1_j 1_k] - 2 E[y] E[f 1_j 1_k]
            # + E[f^2 1_j 1_k]
            C00[j, k] = alpha * a[j] * a[k] * (Ey2 * moment(zero, ind) - 2 * Ey * E_f + E_f2)
            lam0[j, k] = alpha * a[j] * a[k] * moment(zero, ind)
        # Dirac part of relu'': -alpha a_j E[(y - f) delta(h_j)]
        #   = -alpha a_j phi(0) E[y - f | h_j = 0]
        others = sum(a[i] * inv_sqrt_2pi for i in range(P) if i != j)
        lam0[j, j] -= alpha * a[j] * inv_sqrt_2pi * (Ey - others)
    M1 = eta * alpha * np.outer(a * 0.5, Eyz)
    prop = np.eye(P) - eta * lam0
    return M1, prop @ prop.T + eta**2 * C00 + M1 @ M1.T


def _sharp_case(ref_dir: Path) -> Case:
    prob = dmft.Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.5, T=12)
    data = np.load(ref_dir / "sims_tanh-he1-he3_alpha3_eta0.5_T12.npz")
    sims = [_seed_mean(prob, data, d, {"M": f"M_d{d}", "Q": f"Q_d{d}", "e_train": f"train_d{d}"})
            for d in (1000, 2000, 4000)]
    ext = dmft.extrapolate(sims)
    # t = 1 is a single GD step from the initialisation: its exact value is known in closed
    # form, so it replaces the extrapolation there (SE 0); how far the extrapolation lies from
    # it is recorded (an earlier set of simulations had a 3.3 SE outlier at Q_01).
    M1, Q1 = relu_first_step(prob)
    z_ref = (ext.Q[1] - Q1) / ext.Q_se[1]
    M, M_se, Q, Q_se = ext.M.copy(), ext.M_se.copy(), ext.Q.copy(), ext.Q_se.copy()
    M[1], M_se[1], Q[1], Q_se[1] = M1, 0.0, Q1, 0.0
    ref = dmft.Trajectory(
        problem=prob, M=M, M_se=M_se, Q=Q, Q_se=Q_se, e_train=ext.e_train,
        e_train_se=ext.e_train_se, e_gen=ext.e_gen, e_gen_se=ext.e_gen_se,
        provenance={**ext.provenance, "t1": "exact first step (closed form)"},
        diagnostics={"extrapolated_Q1_minus_exact_z": z_ref})
    return Case(
        name="sharp", title="sharp case (P=K=2, ReLU, alpha 3, eta 0.5, T 12) vs 1/d extrapolation",
        problem=prob, reference=ref, observables=("M", "Q"), times=tuple(range(1, prob.T)),
        estimators=("stein",), quick_samples=3 * 10**5,
        full_samples={"stein": _FULL_GRID[:5]},
        note=("dmft.extrapolate (a + b/d) of our d = 1000, 2000, 4000 simulations (400, 200, 80 "
              "seeds); at t = 1 the reference is the exact first step instead (closed form; "
              f"the extrapolated Q there is within |z| <= {np.abs(z_ref).max():.2f} of it)"),
    )


def get_cases(names: tuple[str, ...] | None = None) -> list[Case]:
    """Build the cases (loads the reference files); ``names`` selects a subset in CASES order."""
    names = CASES if names is None else tuple(names)
    bad = [n for n in names if n not in CASES]
    if bad:
        raise ValueError(f"unknown case(s) {bad}; allowed: {CASES}")
    ref_dir = reference_dir() if {"relu", "sharp"} & set(names) else None
    build = {"linear": _linear_case, "tanh": _tanh_case,
             "relu": lambda: _relu_case(ref_dir), "sharp": lambda: _sharp_case(ref_dir)}
    return [build[n]() for n in names]


CASES = ("linear", "tanh", "relu", "sharp")
