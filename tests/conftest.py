"""Shared test fixtures: reference data shipped in ``data/reference`` and the authors' files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

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


def agree(a, a_se, dof_a, b, b_se, dof_b, n_tests: int, threshold: float = 3.0):
    """Boolean array: a and b agree under a family-wise ``threshold``-sigma test.

    Standard errors estimated from k replicas or seeds make (a - b) / combined SE Student-t
    (Welch-Satterthwaite degrees of freedom from ``dof_a``, ``dof_b``; inf for exact values),
    and a test over ``n_tests`` entries must be Bonferroni-corrected: the critical value has
    the two-sided tail 2 Phi(-threshold) / n_tests.
    """
    from scipy import stats

    va, vb = np.asarray(a_se, dtype=float) ** 2, np.asarray(b_se, dtype=float) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        welch = (va + vb) ** 2 / (va**2 / dof_a + vb**2 / dof_b)
    welch = np.where(np.isfinite(welch), welch, np.inf)
    tail = 2 * stats.norm.sf(threshold) / n_tests
    crit = stats.t.isf(tail / 2, welch)
    return np.abs(np.asarray(a) - b) <= crit * np.sqrt(va + vb)
