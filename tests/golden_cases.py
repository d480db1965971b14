"""Fixed-seed runs whose results are stored in ``tests/data/golden`` (see ``test_golden.py``).

Each case exercises one code path of a solver (estimator, storage, schedule, registry or user
target and activation, quadrature or Monte Carlo). The stored files were written by
``python -m tests.golden_cases`` before a refactoring; the test holds every later version of the
solvers to them, so a change of behaviour cannot slip in unnoticed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import dmft

GOLDEN_DIR = Path(__file__).resolve().parent / "data" / "golden"
FIELDS = ("M", "Q", "e_train", "e_gen", "M_se", "Q_se", "e_train_se", "e_gen_se",
          "C", "R", "Lam", "C_se", "R_se", "Lam_se")


# user callables at module level: the cases must rebuild the same problems every time
def user_target(z):
    return np.sin(z[0]) + 0.5 * z[0] * z[0]


def _soft(x):
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def _soft_d1(x):
    return 1.0 / (1.0 + math.exp(-x))


def _soft_d2(x):
    e = math.exp(-abs(x))
    return e / ((1.0 + e) * (1.0 + e))


USER_TARGET = dmft.Target(user_target, K=1, name="sin-plus-square")
USER_ACTIVATION = dmft.Activation(_soft, _soft_d1, _soft_d2, name="user-softplus")
PAPER = dict(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=7)


def cases() -> dict:
    """name -> zero-argument callable returning a Trajectory."""
    paper = dmft.Problem(**PAPER)
    M0 = np.array([[0.2, -0.1], [0.05, 0.3]])
    general = dmft.Problem(**{**PAPER, "lam": 0.1, "M0": M0, "Q0": np.eye(2) + M0 @ M0.T,
                              "eta": 0.3})
    tanh_he3 = dmft.Problem(target="he3", P=2, activation="tanh", alpha=2.0, eta=0.3, T=6)
    cyclic = dmft.Problem(**{**PAPER, "schedule": dmft.Cyclic(3), "noise": 0.3, "T": 8})
    bern = dmft.Problem(target="z1z2z3-he3", P=3, activation="erf", alpha=4.0, eta=0.25,
                        T=5, schedule=dmft.Bernoulli(0.5))
    user = dmft.Problem(target=USER_TARGET, P=1, activation=USER_ACTIVATION, alpha=2.5,
                        eta=0.3, T=5)
    user_p2 = dmft.Problem(target="staircase", P=2, activation=USER_ACTIVATION, alpha=3.0,
                           eta=0.2, T=5)
    sims_small = dict(d=300, seeds=3, seed=11)
    return {
        "dmft_stein_stored": lambda: dmft.solve(paper, samples=2**15, seed=1),
        "dmft_stein_replay": lambda: dmft.solve(paper, samples=2**15, seed=2, storage="replay",
                                                chunk_size=4096),
        "dmft_general_init": lambda: dmft.solve(general, samples=2**15, seed=3),
        "dmft_pathwise_tanh": lambda: dmft.solve(tanh_he3, samples=2**14, seed=4,
                                                 estimator="pathwise"),
        "dmft_stein_tanh": lambda: dmft.solve(tanh_he3, samples=2**14, seed=4),
        "dmft_cyclic_noise": lambda: dmft.solve(cyclic, samples=2**15, seed=5),
        "dmft_bernoulli_p3": lambda: dmft.solve(bern, samples=2**15, seed=6),
        "dmft_user_target_activation": lambda: dmft.solve(user, samples=2**14, seed=7),
        "dmft_user_activation_p2": lambda: dmft.solve(user_p2, samples=2**14, seed=8,
                                                      estimator="pathwise"),
        "onepass_paper": lambda: dmft.solve(paper, method="one-pass"),
        "onepass_erf_p3_gauss_hermite": lambda: dmft.solve(bern, method="one-pass"),
        "onepass_relu_p4_qmc": lambda: dmft.solve(
            dmft.Problem(target="z1z2z3-he3", P=4, activation="relu", alpha=5.0, eta=0.2, T=4),
            method="one-pass", seed=3, qmc_replicas=4, qmc_log2=12),
        "onepass_user": lambda: dmft.solve(user, method="one-pass"),
        "sim_full": lambda: dmft.simulate(paper, **sims_small),
        "sim_general_init": lambda: dmft.simulate(general, **sims_small),
        "sim_cyclic_noise": lambda: dmft.simulate(cyclic, **sims_small),
        "sim_cyclic_small_blocks": lambda: dmft.simulate(
            dmft.Problem(**{**PAPER, "schedule": dmft.Cyclic(200), "T": 6}), **sims_small),
        "sim_bernoulli_p3": lambda: dmft.simulate(bern, **sims_small),
        "sim_onepass": lambda: dmft.simulate(paper.replace(schedule="one-pass"), **sims_small),
        "sim_user": lambda: dmft.simulate(user, **sims_small),
    }


def arrays(traj) -> dict:
    """The Trajectory's arrays (and numeric diagnostics) by name."""
    out = {name: getattr(traj, name) for name in FIELDS if getattr(traj, name) is not None}
    for key, val in traj.diagnostics.items():
        arr = np.asarray(val)
        if arr.dtype.kind in "fiub":
            out["diag_" + key] = arr
    return out


def host_signature() -> dict:
    """What the bits of a float result depend on besides the code: CPU and library versions."""
    import llvmlite.binding as llvm
    import numba

    return {"cpu": llvm.get_host_cpu_name(), "numba": numba.__version__,
            "numpy": np.__version__, "threads": int(numba.get_num_threads())}


def main() -> None:
    import json

    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for name, run in cases().items():
        np.savez_compressed(GOLDEN_DIR / f"{name}.npz", **arrays(run()))
        print("wrote", name)
    (GOLDEN_DIR / "host.json").write_text(json.dumps(host_signature(), indent=1) + "\n")


if __name__ == "__main__":
    main()
