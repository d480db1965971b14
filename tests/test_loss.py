"""The shared loss kernels: F and J against finite differences of the loss, fast paths."""

from __future__ import annotations

import numba
import numpy as np
import pytest

import dmft
from dmft.losses import LOSSES
from solvers.numerics.committee import batch_F, block_F, committee_F, committee_J
from solvers.numerics.table import ACTIVATION_TABLE

_SQUARE = LOSSES["square"].kernel_args()


@numba.njit
def _call(fn, x):
    return fn(x)


@pytest.mark.parametrize("name", sorted(dmft.ACTIVATIONS))
def test_registry_fast_path_equals_cfunc_path(name):
    act = dmft.ACTIVATIONS[name]
    x = np.linspace(-6, 6, 2001)
    for fast_fn, cfn in zip(ACTIVATION_TABLE.jitted(act.code), act.cfuncs(), strict=True):
        fast = np.array([_call(fast_fn, v) for v in x])
        slow = np.array([_call(cfn, v) for v in x])
        # Same definitions; inlining may change the last bit of an O(1) intermediate (fused
        # operations, vectorised vs scalar libm tanh/erf). Derivatives such as 1 - tanh(x)^2
        # cancel, so one ulp of tanh becomes an absolute error of ~2 eps, relative ~eps/sigma'.
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=8 * np.finfo(float).eps)


@pytest.mark.parametrize("name", ["tanh", "erf", "softplus", "quadratic", "linear"])
def test_F_and_J_are_gradient_and_hessian_of_the_loss(name):
    act = dmft.ACTIVATIONS[name]
    sig, dsig, d2sig = act.cfuncs()
    rng = np.random.default_rng(0)
    P = 3
    a = rng.standard_normal(P)
    u, y = rng.standard_normal(P), 0.7

    def loss(v):
        return 0.5 * (y - a @ act(v)) ** 2

    F = np.empty(P)
    resid = committee_F(u, y, a, sig, dsig, _SQUARE, F)
    J = np.empty((P, P))
    committee_J(u, -resid, 1.0, a, dsig, d2sig, J)
    eps = 1e-5
    eye = np.eye(P)
    F_fd = np.array([(loss(u + eps * e) - loss(u - eps * e)) / (2 * eps) for e in eye])
    J_fd = np.array([[(loss(u + eps * (e + f)) - loss(u + eps * (e - f)) - loss(u - eps * (e - f))
                       + loss(u - eps * (e + f))) / (4 * eps**2) for f in eye] for e in eye])
    np.testing.assert_allclose(F, F_fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(J, J_fd, rtol=1e-4, atol=1e-5)


def test_batch_F_matches_numpy():
    act = dmft.ACTIVATIONS["relu"]
    sig, dsig, _ = act.cfuncs()
    rng = np.random.default_rng(1)
    U, y, a = rng.standard_normal((500, 2)), rng.standard_normal(500), np.array([0.7, -0.7])
    weight = (rng.random(500) < 0.5).astype(float)
    F, resid = batch_F(U, y, a, sig, dsig, weight, _SQUARE)
    f = np.maximum(U, 0) @ a
    np.testing.assert_allclose(resid, y - f)
    np.testing.assert_allclose(F, -(y - f)[:, None] * a * (U > 0) * weight[:, None])


@numba.njit
def _block_vs_committee(H, y, w, a, sig, dsig, loss):
    P, n = H.shape
    F_blk = np.empty((P, n))
    res_blk = np.empty(n)
    block_F(H, y, w, a, sig, dsig, F_blk, 0, res_blk, loss, np.empty(n))
    F_one = np.empty((P, n))
    res_one = np.empty(n)
    Fv = np.empty(P)
    for i in range(n):
        res_one[i] = committee_F(H[:, i].copy(), y[i], a, sig, dsig, loss, Fv)
        for j in range(P):
            F_one[j, i] = w[i] * Fv[j]
    return F_blk, res_blk, F_one, res_one


@pytest.mark.parametrize("name", sorted(dmft.ACTIVATIONS))
@pytest.mark.parametrize("loss", ["square", "logistic"])
def test_block_F_equals_committee_F_sample_by_sample(name, loss):
    act = dmft.ACTIVATIONS[name]
    rng = np.random.default_rng(3)
    P, n = 3, 777
    H = 2 * rng.standard_normal((P, n))
    y, a = rng.standard_normal(n), rng.standard_normal(P)
    w = (rng.random(n) < 0.6).astype(np.uint8)
    sig, dsig, _ = act.cfuncs()
    F_blk, res_blk, F_one, res_one = _block_vs_committee(H, y, w, a, sig, dsig,
                                                         LOSSES[loss].kernel_args())
    # same formula; the vectorised sums may be reassociated (last bits only)
    np.testing.assert_allclose(res_blk, res_one, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(F_blk, F_one, rtol=1e-12, atol=1e-13)
    assert np.all(F_blk[:, w == 0] == 0.0)
