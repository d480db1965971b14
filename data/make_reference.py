"""Regenerate the project's own simulation references in ``data/reference/``.

Usage: ``python data/make_reference.py [name ...]`` (default: every file). Each file holds
finite-d simulations by ``dmft.simulate`` with the seed stated here, one row per run, so that
tests and benchmarks can compute means, standard errors and 1/d extrapolations themselves.
Runs take a few minutes on 2 cores (data matrices up to 15000 x 5000).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import dmft

HERE = Path(__file__).resolve().parent / "reference"

# name -> (problem keywords, {d: seeds}, master seed)
REFERENCES = {
    # the sharp case: eta = 0.5 separates a correct solver from the authors' script
    "sims_tanh-he1-he3_alpha3_eta0.5_T12": (
        dict(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.5, T=12),
        {1000: 400, 2000: 200, 4000: 80}, 20261202),
    # the paper's ReLU setting at the authors' d = 5000 and 32 seeds
    "sims_tanh-he1-he3_alpha3_eta0.2_T7_d5000": (
        dict(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.2, T=7),
        {5000: 32}, 20261203),
}


def make(name: str) -> Path:
    """Simulate reference ``name`` and write ``data/reference/<name>.npz`` atomically."""
    kwargs, seeds_by_d, seed = REFERENCES[name]
    problem = dmft.Problem(**kwargs)
    arrays = {"seed": np.int64(seed), "problem": np.array(repr(problem))}
    for d, seeds in seeds_by_d.items():
        # one master seed per d, derived from the file's seed, so each d can be redone alone
        traj = dmft.simulate(problem, d=d, seeds=seeds, seed=seed + d)
        diag = traj.diagnostics
        arrays[f"M_d{d}"] = diag["M_runs"]
        arrays[f"Q_d{d}"] = diag["Q_runs"]
        arrays[f"train_d{d}"] = diag["e_train_runs"]
        arrays[f"gen_d{d}"] = diag["e_gen_runs"]
        print(f"{name}: d={d}, {seeds} seeds done", flush=True)
    out = HERE / f"{name}.npz"
    with tempfile.NamedTemporaryFile(dir=HERE, suffix=".npz", delete=False) as tmp:
        np.savez_compressed(tmp, **arrays)
    Path(tmp.name).replace(out)
    return out


if __name__ == "__main__":
    for name in sys.argv[1:] or REFERENCES:
        print("wrote", make(name))
