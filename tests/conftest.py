"""Shared test fixtures: reference data shipped in ``data/reference`` and the authors' files,
and the exact linear case.

Statistical checks import their helpers from the library, :mod:`dmft.stats` (``agree`` for a
family-wise test with Student-t tails, ``z_scores``, ``mean_se``, ``critical_value``), or use
:func:`dmft.compare` and :meth:`dmft.Trajectory.from_runs`: tolerances come from standard errors
and their degrees of freedom (docs/validation.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import dmft
from dmft.exact import linear_gd

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO / "data" / "reference"
# the authors' published files carry no licence, so they are not shipped: a user who has them
# names their folder here, and the checks against them run
AUTHORS_ENV = "DMFT_REFERENCE_DIR"


def reference_data(name: str):
    """The project's own reference file ``data/reference/<name>.npz`` (see its README)."""
    return np.load(REFERENCE_DIR / f"{name}.npz")


def authors_data(name: str):
    """The authors' file ``<name>.npz`` from $DMFT_REFERENCE_DIR, or skip the calling test."""
    folder = os.environ.get(AUTHORS_ENV)
    path = Path(folder) / f"{name}.npz" if folder else None
    if path is None or not path.is_file():
        pytest.skip(f"authors' reference {name}.npz not available (set {AUTHORS_ENV} to the "
                    "folder holding the files of IdePHICS/benefit-reusing-batch)")
    return np.load(path)


@pytest.fixture(scope="session")
def sharp_sims():
    """Our d = 1000, 2000, 4000 simulations of the sharp case (eta 0.5, T 12)."""
    return reference_data("sims_tanh-he1-he3_alpha3_eta0.5_T12")


@pytest.fixture(scope="session")
def paper_sims_d5000():
    """Our d = 5000, 32-seed simulations of the paper's ReLU setting (eta 0.2, T 7)."""
    return reference_data("sims_tanh-he1-he3_alpha3_eta0.2_T7_d5000")


@pytest.fixture(scope="session")
def authors_sims_d5000():
    """The authors' d = 5000, 32-seed simulations (skips without $DMFT_REFERENCE_DIR)."""
    return authors_data("authors_sims_alpha3_eta0.2_d5000_T7")


@pytest.fixture(scope="session")
def sharp_simulations(sharp_sims):
    """The sharp-case simulations at d = 1000, 2000, 4000 as Trajectories (mean and SE over
    400, 200, 80 seeds; ``e_gen`` is not stored and is NaN)."""
    problem = dmft.Problem(target="tanh-he1-he3", P=2, activation="relu", alpha=3.0, eta=0.5,
                           T=12)
    return [dmft.Trajectory.from_runs(
        problem, {"M": sharp_sims[f"M_d{d}"], "Q": sharp_sims[f"Q_d{d}"],
                  "e_train": sharp_sims[f"train_d{d}"]},
        {"method": "reference-simulation", "d": d}, count="seeds") for d in (1000, 2000, 4000)]


@pytest.fixture(scope="session")
def linear_exact():
    """The exact linear case of docs/validation.md (P = K = 1, alpha 3, eta 0.2) for t < 20:
    a Trajectory with zero standard errors (:func:`dmft.exact.linear_gd`). ``2 e_train`` is
    the train MSE quoted there; slice ``[:T]`` for shorter runs."""
    return linear_gd(dmft.Problem(target="linear", P=1, activation="linear", alpha=3.0,
                                  eta=0.2, T=20, a=[1.0]))
