"""Problem validation, schedules, the target and activation registries."""

from __future__ import annotations

import math
import pickle
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.polynomial import hermite_e
from scipy import special

import dmft
from dmft.schedules import Bernoulli, Cyclic, Full, OnePass, get_schedule


def _user_target(z):
    return z[0] * z[1]


# ============================================================================= Problem: valid
def test_defaults_are_the_paper_setting():
    p = dmft.Problem()
    assert (p.target.name, p.P, p.activation.name, p.K) == ("tanh-he1-he3", 2, "relu", 2)
    assert (p.alpha, p.eta, p.lam, p.T, p.noise) == (3.0, 0.2, 0.0, 7, 0.0)
    np.testing.assert_array_equal(p.a, np.array([1.0, -1.0]) / math.sqrt(2))
    np.testing.assert_array_equal(p.M0, np.zeros((2, 2)))
    np.testing.assert_array_equal(p.Q0, np.eye(2))
    assert p.schedule == Full()


def test_default_a_alternates_for_odd_P():
    p = dmft.Problem(P=3, target="tanh")
    np.testing.assert_allclose(p.a, np.array([1.0, -1.0, 1.0]) / math.sqrt(3), rtol=0, atol=0)


@pytest.mark.parametrize("name,K", [("linear", 1), ("tanh", 1), ("he2", 1), ("he3", 1),
                                    ("he4", 1), ("staircase", 2), ("tanh-he1-he3", 2),
                                    ("tanh-sum", 2), ("z1z2z3-he3", 4)])
def test_K_is_taken_from_the_target(name, K):
    p = dmft.Problem(target=name, P=3)
    assert p.K == K and p.M0.shape == (3, K)


def test_user_objects_and_numpy_scalars_are_accepted():
    tgt = dmft.Target(_user_target, K=2, name="product")
    act = dmft.Activation(math.sin, math.cos, lambda x: -math.sin(x), name="sin")
    p = dmft.Problem(target=tgt, activation=act, P=np.int64(3), T=np.int32(4),
                     alpha=np.float32(0.5), eta=np.float64(0.1), lam=0, noise=np.float64(0.25))
    assert p.target is tgt and p.activation is act
    assert (p.P, p.T, p.K) == (3, 4, 2)
    assert type(p.P) is int and type(p.alpha) is float and p.alpha == 0.5


def test_integral_floats_are_accepted_as_integers():
    p = dmft.Problem(P=2.0, T=7.0)
    assert (p.P, p.T) == (2, 7) and type(p.P) is int and type(p.T) is int
    assert dmft.Problem(P=np.float64(3.0), T=1e1).T == 10
    assert p == dmft.Problem(P=2, T=7)
    assert Cyclic(4.0) == Cyclic(4) and type(Cyclic(4.0).n_blocks) is int
    assert dmft.Problem(schedule="cyclic(1e3)").schedule == Cyclic(1000)


def test_arrays_are_copied_and_read_only():
    a = np.array([0.3, -0.2])
    p = dmft.Problem(a=a)
    a[0] = 99.0
    assert p.a[0] == 0.3
    with pytest.raises(ValueError):
        p.a[0] = 1.0
    with pytest.raises(AttributeError):
        p.eta = 0.5


def test_psd_boundary_is_accepted():
    # Q0 - M0 M0^T = 0 exactly: the student lies in the teacher span
    M0 = np.array([[0.6, 0.8], [0.8, -0.6]])
    p = dmft.Problem(M0=M0, Q0=M0 @ M0.T)
    np.testing.assert_allclose(p.Qperp0, 0.0, atol=1e-15)


@pytest.mark.parametrize("spec,expected", [
    ("full", Full()), ("one-pass", OnePass()), ("onepass", OnePass()), ("FULL", Full()),
    ("cyclic(3)", Cyclic(3)), ("bernoulli(0.25)", Bernoulli(0.25)), (Cyclic(1), Cyclic(1)),
    (Bernoulli(1), Bernoulli(1.0)),
])
def test_schedule_specs(spec, expected):
    assert dmft.Problem(schedule=spec).schedule == expected


def test_replace_revalidates_and_follows_P_and_target():
    p = dmft.Problem(eta=0.3)
    q = p.replace(P=3, target="tanh")
    assert (q.P, q.K, q.eta) == (3, 1, 0.3)
    assert q.a.shape == (3,) and q.M0.shape == (3, 1) and q.Q0.shape == (3, 3)
    assert p.replace() == p and p.replace(T=9) != p
    with pytest.raises(ValueError, match="eta"):
        p.replace(eta=-1.0)


@pytest.mark.parametrize("schedule", ["full", "one-pass", Cyclic(5), Bernoulli(0.1 + 0.2)])
def test_to_dict_from_dict_and_pickle_round_trip(schedule):
    p = dmft.Problem(target="staircase", P=3, activation="erf", alpha=1.7, eta=0.05, lam=0.01,
                     T=5, a=[0.1, 0.2, 0.3], M0=np.full((3, 2), 0.1),
                     Q0=np.eye(3) + 0.05, schedule=schedule, noise=0.3)
    back = dmft.Problem.from_dict(p.to_dict())
    assert back == p and hash(back) == hash(p)
    np.testing.assert_array_equal(back.Q0, p.Q0)
    assert pickle.loads(pickle.dumps(p)) == p


def test_from_dict_needs_user_objects():
    tgt = dmft.Target(_user_target, K=2, name="product")
    p = dmft.Problem(target=tgt)
    with pytest.raises(ValueError, match="'product' is not a registered target"):
        dmft.Problem.from_dict(p.to_dict())
    assert dmft.Problem.from_dict(p.to_dict(), target=tgt) == p


# ============================================================================ Problem: invalid
# one case per field and failure kind: (field, value, exception, regex naming field, value, range)
_INVALID = [
    ("alpha", 0.0, ValueError, r"alpha must be finite and > 0, got 0\.0"),
    ("alpha", -3.0, ValueError, r"alpha must be finite and > 0, got -3\.0"),
    ("alpha", float("nan"), ValueError, r"alpha must be finite and > 0, got nan"),
    ("alpha", float("inf"), ValueError, r"alpha must be finite and > 0, got inf"),
    ("alpha", "3", TypeError, r"alpha must be a real number, got '3'"),
    ("alpha", True, TypeError, r"alpha must be a real number, got True"),
    ("alpha", None, TypeError, r"alpha must be a real number, got None"),
    ("alpha", 1 + 2j, TypeError, r"alpha must be a real number, got \(1\+2j\)"),
    ("eta", 0, ValueError, r"eta must be finite and > 0, got 0"),
    ("eta", -0.1, ValueError, r"eta must be finite and > 0, got -0\.1"),
    ("eta", float("inf"), ValueError, r"eta must be finite and > 0, got inf"),
    ("eta", [0.1], TypeError, r"eta must be a real number, got \[0\.1\]"),
    ("lam", -1e-9, ValueError, r"lam must be finite and >= 0, got -1e-09"),
    ("lam", float("nan"), ValueError, r"lam must be finite and >= 0, got nan"),
    ("lam", "0", TypeError, r"lam must be a real number, got '0'"),
    ("noise", -0.5, ValueError, r"noise must be finite and >= 0, got -0\.5"),
    ("noise", float("inf"), ValueError, r"noise must be finite and >= 0, got inf"),
    ("noise", None, TypeError, r"noise must be a real number, got None"),
    ("T", 0, ValueError, r"T must be an integer >= 1, got 0"),
    ("T", -4, ValueError, r"T must be an integer >= 1, got -4"),
    ("T", 7.5, ValueError, r"T must be an integer >= 1, got 7\.5"),
    ("T", float("inf"), ValueError, r"T must be an integer >= 1, got inf"),
    ("T", "7", TypeError, r"T must be an integer >= 1, got '7'"),
    ("T", True, TypeError, r"T must be an integer >= 1, got True"),
    ("P", 0, ValueError, r"P must be an integer >= 1, got 0"),
    ("P", 2.5, ValueError, r"P must be an integer >= 1, got 2\.5"),
    ("P", 0.0, ValueError, r"P must be an integer >= 1, got 0\.0"),
    ("P", None, TypeError, r"P must be an integer >= 1, got None"),
    ("target", "he5", ValueError, r"target='he5' is not a registered target; allowed: \[.*he4"),
    ("target", 3, TypeError, r"target must be a registry name or dmft.Target, got int"),
    ("activation", "gelu", ValueError,
     r"activation='gelu' is not a registered activation; allowed: \[.*relu"),
    ("activation", math.tanh, TypeError, r"activation must be a registry name or dmft.Activation"),
    ("a", [1.0, 2.0, 3.0], ValueError, r"a must have shape \(2,\), got shape \(3,\)"),
    ("a", 0.5, ValueError, r"a must have shape \(2,\), got shape \(\)"),
    ("a", [[1.0, 2.0]], ValueError, r"a must have shape \(2,\), got shape \(1, 2\)"),
    ("a", [1.0, float("nan")], ValueError, r"a must be finite, got"),
    ("a", ["0.5", "0.5"], TypeError, r"a must be a real array of shape \(2,\), got \['0.5'"),
    ("a", [0.5 + 1j, 0.5], TypeError, r"a must be a real array of shape \(2,\)"),
    ("a", [True, False], TypeError, r"a must be a real array of shape \(2,\)"),
    ("a", [[1.0], [1.0, 2.0]], TypeError, r"a must be a real array of shape \(2,\)"),
    ("M0", np.zeros((2, 3)), ValueError, r"M0 must have shape \(2, 2\), got shape \(2, 3\)"),
    ("M0", np.full((2, 2), np.inf), ValueError, r"M0 must be finite"),
    ("M0", "zeros", TypeError, r"M0 must be a real array of shape \(2, 2\), got 'zeros'"),
    ("Q0", np.eye(3), ValueError, r"Q0 must have shape \(2, 2\), got shape \(3, 3\)"),
    ("Q0", [[1.0, 0.5], [0.4, 1.0]], ValueError, r"Q0 must be symmetric, got"),
    ("Q0", [[1.0, 2.0], [2.0, 1.0]], ValueError,
     r"Q0 - M0 M0\^T must be positive semi-definite.*smallest eigenvalue is -1 < 0"),
    ("Q0", -np.eye(2), ValueError, r"Q0 - M0 M0\^T must be positive semi-definite"),
    ("Q0", [[1.0, np.nan], [np.nan, 1.0]], ValueError, r"Q0 must be finite"),
    ("schedule", "minibatch", ValueError,
     r"schedule='minibatch' is not valid; allowed: 'full', 'one-pass', dmft.Cyclic"),
    ("schedule", 3, ValueError, r"schedule=3 is not valid; allowed:"),
    ("schedule", "cyclic(0)", ValueError, r"Cyclic.n_blocks must be an integer >= 1, got 0"),
    ("schedule", "cyclic(2.5)", ValueError, r"schedule='cyclic\(2.5\)'"),
    ("schedule", "bernoulli(0)", ValueError,
     r"Bernoulli.b must be finite and in \(0, 1\], got 0\.0"),
    ("schedule", "bernoulli(1.5)", ValueError,
     r"Bernoulli.b must be finite and in \(0, 1\], got 1\.5"),
]


@pytest.mark.parametrize("field,value,exc,pattern", _INVALID,
                         ids=[f"{f}={v!r}" for f, v, _, _ in _INVALID])
def test_invalid_field_is_rejected_with_a_clear_message(field, value, exc, pattern):
    with pytest.raises(exc, match=pattern):
        dmft.Problem(**{field: value})


def test_teacher_overlap_too_large_for_Q0():
    # Q0 = I is fine alone; with |M0 row| > 1 the student would need a negative orthogonal part
    with pytest.raises(ValueError, match=r"positive semi-definite.*M0=\[\[1\.5, 0\.0\]"):
        dmft.Problem(M0=[[1.5, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize("M0,Q0", [
    ([[1e200, 1e200], [1e200, -1e200]], None),            # M0 M0^T overflows to inf and nan
    ([[0.0, 0.0], [0.0, 0.0]], [[1e308, 1e308], [1e308, 1e308]]),  # the symmetrisation overflows
])
def test_overflow_in_the_psd_check_is_rejected(M0, Q0):
    kw = {"M0": M0} if Q0 is None else {"M0": M0, "Q0": Q0}
    with pytest.raises(ValueError, match="positive semi-definite"):
        dmft.Problem(**kw)


@pytest.mark.parametrize("make,exc,pattern", [
    (lambda: Cyclic(0), ValueError, r"Cyclic.n_blocks must be an integer >= 1, got 0"),
    (lambda: Cyclic(2.5), ValueError, r"Cyclic.n_blocks must be an integer >= 1, got 2\.5"),
    (lambda: Cyclic("2"), TypeError, r"Cyclic.n_blocks must be an integer >= 1, got '2'"),
    (lambda: Cyclic(True), TypeError, r"Cyclic.n_blocks"),
    (lambda: Bernoulli(0.0), ValueError, r"Bernoulli.b must be finite and in \(0, 1\], got 0\.0"),
    (lambda: Bernoulli(1.01), ValueError, r"Bernoulli.b must be finite and in \(0, 1\], got 1\.01"),
    (lambda: Bernoulli(float("nan")), ValueError,
     r"Bernoulli.b must be finite and in \(0, 1\], got nan"),
    (lambda: Bernoulli("0.5"), TypeError, r"Bernoulli.b must be a real number, got '0.5'"),
    (lambda: Bernoulli(True), TypeError, r"Bernoulli.b must be a real number, got True"),
    (lambda: dmft.Target(_user_target, K=0), ValueError, r"Target.K must be an integer >= 1"),
    (lambda: dmft.Target("z0", K=1), TypeError, r"Target.fn must be callable"),
    (lambda: dmft.Activation(math.sin, 1.0, math.sin), TypeError,
     r"Activation.dsigma must be callable"),
    (lambda: dmft.Activation(math.sin, math.cos, math.sin, d2_dirac_at_zero=-1.0), ValueError,
     r"Activation.d2_dirac_at_zero must be finite and >= 0, got -1\.0"),
    (lambda: dmft.Activation(math.sin, math.cos, math.sin, d2_dirac_at_zero="1"), TypeError,
     r"Activation.d2_dirac_at_zero must be a real number, got '1'"),
])
def test_invalid_building_blocks(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


def test_get_schedule_passes_instances_through():
    c = Cyclic(4)
    assert get_schedule(c) is c


# ===================================================================== Problem: property test
# Each field has a strategy of valid and one of invalid values; a problem is valid iff every
# field is. Draws are all-valid, exactly-one-invalid or independent per field, so that both
# outcomes and every single failure are exercised.
_BAD_TYPES = st.sampled_from(["1.0", None, True, [1.0], 1 + 1j, object()])


def _real(allow_zero: bool):
    valid = st.one_of(
        st.floats(min_value=0.0, max_value=1e12, exclude_min=not allow_zero),
        st.integers(min_value=0 if allow_zero else 1, max_value=10**6),
        st.floats(min_value=1e-3, max_value=10.0).map(np.float64),
    )
    invalid = st.one_of(
        st.floats(max_value=0.0, exclude_max=allow_zero, allow_nan=False),
        st.sampled_from([math.nan, math.inf, -math.inf]),
        _BAD_TYPES,
    )
    return valid, invalid


_INT_FIELD = (
    st.one_of(st.integers(1, 12), st.integers(1, 12).map(np.int64),
              st.integers(1, 12).map(float)),
    st.one_of(st.integers(-5, 0), st.sampled_from([2.5, 1.5, 0.0, math.inf, "3", True, None])),
)
_SCALAR_FIELDS = {
    "alpha": _real(False),
    "eta": _real(False),
    "lam": _real(True),
    "noise": _real(True),
    "T": _INT_FIELD,
    "target": (
        st.one_of(st.sampled_from(sorted(dmft.TARGETS)),
                  st.just(dmft.Target(_user_target, K=2, name="product"))),
        st.sampled_from(["he5", "", "Tanh", 2, None]),
    ),
    "activation": (
        st.one_of(st.sampled_from(sorted(dmft.ACTIVATIONS)), st.just(dmft.ACTIVATIONS["erf"])),
        st.sampled_from(["gelu", "ReLU", 0, None]),
    ),
    "schedule": (
        st.one_of(
            st.sampled_from(["full", "one-pass", "cyclic(2)", "bernoulli(0.5)", Full(),
                             OnePass()]),
            st.integers(1, 100).map(Cyclic),
            st.floats(min_value=0.0, max_value=1.0, exclude_min=True).map(Bernoulli),
        ),
        st.sampled_from(["cyclic(0)", "bernoulli(0)", "bernoulli(2)", "sgd", 1, None]),
    ),
}
_ARRAY_FIELDS = ("P", "a", "M0/Q0")


@st.composite
def _problem_kwargs(draw):
    names = list(_SCALAR_FIELDS) + list(_ARRAY_FIELDS)
    mode = draw(st.sampled_from(["valid", "one-invalid", "one-invalid", "random"]))
    if mode == "valid":
        bad = set()
    elif mode == "one-invalid":
        bad = {draw(st.sampled_from(names))}
    else:
        bad = {n for n in names if draw(st.booleans())}
    kwargs = {n: draw(_SCALAR_FIELDS[n][n in bad]) for n in _SCALAR_FIELDS}
    P = draw(st.integers(1, 4))
    kwargs["P"] = draw(_INT_FIELD[1]) if "P" in bad else P
    K = dmft.Problem(target=kwargs["target"]).K if "target" not in bad else 1
    unit = st.floats(-1.0, 1.0)
    a_vec = draw(st.lists(unit, min_size=P, max_size=P))
    if "a" in bad:
        kwargs["a"] = draw(st.sampled_from([a_vec + [0.1], [math.nan] * P, ["x"] * P]))
    else:
        kwargs["a"] = draw(st.sampled_from([None, a_vec]))
    # M0 with spectral norm <= 0.9 so that the default Q0 = I stays valid
    M0 = np.array(draw(st.lists(unit, min_size=P * K, max_size=P * K))).reshape(P, K)
    M0 *= 0.9 / max(1.0, np.linalg.norm(M0))
    B = np.array(draw(st.lists(unit, min_size=P * P, max_size=P * P))).reshape(P, P)
    Q0 = M0 @ M0.T + B @ B.T
    if "M0/Q0" in bad:
        kind = draw(st.sampled_from(["bad-shape", "not-psd"] + (["asym"] if P > 1 else [])))
        if kind == "bad-shape":
            kwargs["M0"] = np.zeros((P, K + 1))
        elif kind == "not-psd":
            # every eigenvalue of Q0 - M0 M0^T is <= -0.5
            shift = np.linalg.eigvalsh(B @ B.T).max() + 0.5
            kwargs["M0"], kwargs["Q0"] = M0, Q0 - shift * np.eye(P)
        else:
            asym = Q0.copy()
            asym[0, 1] += 0.1
            kwargs["M0"], kwargs["Q0"] = M0, asym
    else:
        kind = draw(st.sampled_from(["default", "M0", "both"]))
        if kind != "default":
            kwargs["M0"] = M0
        if kind == "both":
            kwargs["Q0"] = Q0
    return kwargs, not bad


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_problem_kwargs())
def test_property_valid_problems_construct_and_invalid_ones_raise_documented_errors(case):
    kwargs, valid = case
    if valid:
        p = dmft.Problem(**kwargs)
        assert (p.P, p.T) == (int(kwargs["P"]), int(kwargs["T"]))
        assert p.a.shape == (p.P,) and p.M0.shape == (p.P, p.K) and p.Q0.shape == (p.P, p.P)
        assert dmft.Problem.from_dict(p.to_dict(), target=p.target, activation=p.activation) == p
    else:
        with pytest.raises((ValueError, TypeError)):
            dmft.Problem(**kwargs)


# ============================================================================ target registry
def _he(k, x):
    """He_k from numpy's HermiteE basis (independent of dmft.targets.hermite)."""
    return hermite_e.hermeval(x, [0] * k + [1])


_TARGET_FORMULAS = {
    "linear": (1, lambda z: z[0]),
    "tanh": (1, lambda z: np.tanh(z[0])),
    "he2": (1, lambda z: z[0] ** 2 - 1),
    "he3": (1, lambda z: z[0] ** 3 - 3 * z[0]),
    "he4": (1, lambda z: z[0] ** 4 - 6 * z[0] ** 2 + 3),
    "staircase": (2, lambda z: z[0] + z[0] * z[1]),
    "tanh-he1-he3": (2, lambda z: np.tanh(z[0] + z[1] ** 3 - 3 * z[1])),
    "tanh-sum": (2, lambda z: np.tanh(z[0]) + np.tanh(z[1])),
    "z1z2z3-he3": (4, lambda z: z[0] * z[1] * z[2] + z[3] ** 3 - 3 * z[3]),
    "staircase2": (2, lambda z: z[0] + 2 * z[0] * z[1]),
    "sign": (1, lambda z: np.where(z[0] >= 0, 1.0, -1.0)),
    "sign-z1z2": (2, lambda z: np.where(z[0] * z[1] >= 0, 1.0, -1.0)),
    "sign-he1-he3": (2, lambda z: np.where(z[0] + z[1] ** 3 - 3 * z[1] >= 0, 1.0, -1.0)),
}


def test_registry_lists_exactly_the_paper_and_classification_targets():
    assert set(dmft.TARGETS) == set(_TARGET_FORMULAS)


@pytest.mark.parametrize("name", sorted(_TARGET_FORMULAS))
def test_target_values_match_hand_formulas(name):
    K, formula = _TARGET_FORMULAS[name]
    target = dmft.TARGETS[name]
    assert target.K == K and target.name == name
    z = np.random.default_rng(1).normal(size=(K, 1000)) * 2
    y = target(z)
    assert y.shape == (1000,) and y.dtype == np.float64
    np.testing.assert_allclose(y, formula(z), rtol=1e-12, atol=1e-12)


def test_registry_code_follows_the_function_not_the_name():
    from dmft.targets import registry_code

    codes = [registry_code(dmft.TARGETS[name]) for name in sorted(dmft.TARGETS)]
    assert min(codes) >= 0 and len(set(codes)) == len(codes)
    # the solver evaluates code c in numba: a user target that borrows a registry name must
    # not be replaced by the registry formula
    impostor = dmft.Target(lambda z: np.tanh(2 * z[0]), K=1, name="tanh")
    assert registry_code(impostor) == -1
    he3 = pickle.loads(pickle.dumps(dmft.TARGETS["he3"]))
    assert registry_code(he3) == registry_code(dmft.TARGETS["he3"])


def test_registry_functions_refuse_z_of_the_wrong_height():
    # the numba loops read rows 0..K-1 unchecked: a registry function called directly (its
    # Target's fn, bypassing Target.__call__'s check) must refuse a short z, not read past it
    z = np.ones((1, 10))
    with pytest.raises(ValueError, match="K=4"):
        dmft.TARGETS["z1z2z3-he3"].fn(z)
    with pytest.raises(ValueError, match="K=2"):
        dmft.TARGETS["staircase"].fn(np.ones(10))


@pytest.mark.parametrize("k", range(7))
def test_hermite_matches_numpy_hermite_e(k):
    x = np.linspace(-4, 4, 41)
    np.testing.assert_allclose(dmft.targets.hermite(k, x), _he(k, x), rtol=1e-12, atol=1e-9)


def test_hermite_orthogonality_under_the_gaussian():
    # E[He_j He_k] = k! delta_jk, by Gauss-HermiteE quadrature (exact for these degrees)
    x, w = hermite_e.hermegauss(20)
    w = w / w.sum()
    gram = np.array([[np.sum(w * dmft.targets.hermite(j, x) * dmft.targets.hermite(k, x))
                      for k in range(6)] for j in range(6)])
    np.testing.assert_allclose(gram, np.diag([math.factorial(k) for k in range(6)]), atol=1e-9)


def test_target_call_checks_shapes():
    t = dmft.TARGETS["staircase"]
    with pytest.raises(ValueError, match=r"expects z of shape \(K=2, S\), got \(3, 5\)"):
        t(np.zeros((3, 5)))
    bad = dmft.Target(lambda z: z, K=1, name="bad")
    with pytest.raises(ValueError, match=r"returned shape \(1, 4\), expected \(4,\)"):
        bad(np.zeros((1, 4)))


def _scalar_tanh(z):
    return math.tanh(z[0])  # not vectorised: math.tanh takes one number


def _nan_above(z):
    return np.where(z[0] > 1.5, np.nan, z[0])


def test_non_vectorised_target_is_refused_at_problem_construction():
    tgt = dmft.Target(_scalar_tanh, K=2, name="scalar")
    with pytest.raises(TypeError, match=(
            r"target 'scalar' \(.*test_problem\._scalar_tanh\) failed on z of shape \(2, 8\): "
            r"TypeError: .*A target receives z, a float64 array of shape \(K, S\) = \(2, 8\) "
            r".*must return a float array of shape \(S,\) = \(8,\); write it with numpy")):
        dmft.Problem(target=tgt)


@pytest.mark.parametrize("fn,shape", [(lambda z: z, r"\(2, 8\)"),
                                      (lambda z: float(np.sum(z)), r"\(\)"),
                                      (lambda z: z[:, :3].sum(axis=0), r"\(3,\)")])
def test_target_of_the_wrong_shape_is_refused_at_problem_construction(fn, shape):
    with pytest.raises(ValueError, match=(
            rf"target 'mine' \(.*<lambda>\) returned shape {shape}, expected \(8,\)\. "
            r"A target receives z, a float64 array of shape \(K, S\) = \(2, 8\)")):
        dmft.Problem(target=dmft.Target(fn, K=2, name="mine"))


def test_target_is_probed_once_per_object():
    calls = []

    def counting(z):
        calls.append(z.shape)
        return z[0]

    tgt = dmft.Target(counting, K=1, name="counting")
    p = dmft.Problem(target=tgt, P=1)
    p.replace(eta=0.1)
    dmft.Problem(target=tgt, P=3)
    assert calls == [(1, 8)]


def test_non_finite_target_value_names_the_target_and_the_input():
    tgt = dmft.Target(_nan_above, K=2, name="holes")
    z = np.array([[0.0, 1.0, 2.0, 3.0], [0.5, 0.5, -0.25, 0.5]])
    with pytest.raises(ValueError, match=(
            r"target 'holes' \(.*test_problem\._nan_above\) returned nan at z = \[2\.0, -0\.25\] "
            r"\(sample 2 of 4\): the target function must return finite values")):
        tgt(z)


@pytest.mark.parametrize("run", [
    lambda p: dmft.simulate(p, d=200, seeds=2, seed=0),
    lambda p: dmft.solve(p, samples=2000, seed=0),
], ids=["simulate", "dmft"])
def test_non_finite_target_is_reported_as_the_targets_fault_by_the_solvers(run):
    # the probe at construction sees no NaN (its z stays below 1.5); the solvers' data do
    p = dmft.Problem(target=dmft.Target(_nan_above, K=2, name="holes"), T=2)
    with pytest.raises(ValueError, match=r"target 'holes' .* returned nan at z = \[") as info:
        run(p)
    z0 = float(re.search(r"at z = \[([-0-9.e]+),", str(info.value)).group(1))
    assert z0 > 1.5


# ======================================================================== activation registry
_ACTIVATION_FORMULAS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "erf": special.erf,
    "linear": lambda x: x,
    "softplus": lambda x: np.logaddexp(0.0, x),
    "quadratic": lambda x: x**2,
}
_X = np.concatenate([np.linspace(-4.0, -0.01, 40), np.linspace(0.01, 4.0, 40)])


def _py(fn):
    """Elementwise over an array with the plain Python scalar function."""
    return np.vectorize(fn, otypes=[np.float64])


def test_registry_lists_exactly_the_paper_activations():
    assert set(dmft.ACTIVATIONS) == set(_ACTIVATION_FORMULAS)


@pytest.mark.parametrize("name", sorted(_ACTIVATION_FORMULAS))
def test_activation_values_and_finite_difference_derivatives(name):
    act = dmft.ACTIVATIONS[name]
    np.testing.assert_allclose(_py(act.sigma)(_X), _ACTIVATION_FORMULAS[name](_X),
                               rtol=1e-13, atol=1e-14)
    # central differences, error O(h^2) ~ 1e-10; ReLU points stay >= 0.01 away from the kink
    h = 1e-5
    fd1 = (_py(act.sigma)(_X + h) - _py(act.sigma)(_X - h)) / (2 * h)
    fd2 = (_py(act.dsigma)(_X + h) - _py(act.dsigma)(_X - h)) / (2 * h)
    np.testing.assert_allclose(_py(act.dsigma)(_X), fd1, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(_py(act.d2sigma)(_X), fd2, rtol=1e-7, atol=1e-8)


def test_relu_carries_its_dirac_mass_and_smooth_ones_do_not():
    for name, act in dmft.ACTIVATIONS.items():
        assert act.d2_dirac_at_zero == (1.0 if name == "relu" else 0.0), name
        assert act.smooth == (name != "relu")
    # the jump of relu' at 0 equals the Dirac weight
    relu = dmft.ACTIVATIONS["relu"]
    assert relu.dsigma(1e-12) - relu.dsigma(-1e-12) == relu.d2_dirac_at_zero


def test_softplus_does_not_overflow():
    act = dmft.ACTIVATIONS["softplus"]
    vals = [act.sigma(x) for x in (-1000.0, 1000.0)] + [act.dsigma(-1000.0), act.dsigma(1000.0)]
    np.testing.assert_allclose(vals, [0.0, 1000.0, 0.0, 1.0], atol=1e-300)
    assert act.d2sigma(800.0) == pytest.approx(0.0, abs=1e-300)


@pytest.mark.parametrize("name", sorted(_ACTIVATION_FORMULAS))
def test_numba_paths_agree_with_python_functions(name):
    # the kernels use cfuncs, the array API numba ufuncs: both must compile and match
    act = dmft.ACTIVATIONS[name]
    cfuncs = act.cfuncs()
    arrays = (act, act.d1, act.d2)
    for which, vec, cf in zip(("sigma", "dsigma", "d2sigma"), arrays, cfuncs, strict=True):
        expected = _py(getattr(act, which))(_X)
        np.testing.assert_array_equal(vec(_X), expected)
        np.testing.assert_array_equal([cf.ctypes(x) for x in _X[::7]], expected[::7])


def test_activation_pickles_without_compiled_code():
    act = dmft.ACTIVATIONS["tanh"]
    act.cfuncs()
    back = pickle.loads(pickle.dumps(act))
    assert back == act and back._compiled == {}


def _plain_helper(x):
    return x


def _calls_a_plain_helper(x):
    return _plain_helper(x) + 1.0  # numba cannot call a function it was not given


@pytest.mark.parametrize("sigma,reason", [
    (lambda x: np.array([x]), r"No conversion from array\(float64, 1d, C\) to float64"),
    (_calls_a_plain_helper, r"Untyped global name '_plain_helper'"),
])
def test_activation_numba_cannot_compile_gives_one_clear_line(sigma, reason):
    act = dmft.Activation(sigma, math.cos, math.sin, name="broken")
    for use in (act.cfuncs, lambda: act(np.zeros(3))):
        with pytest.raises(TypeError) as info:
            use()
        message = str(info.value)
        assert len(message.splitlines()) == 1 and "\x1b" not in message, message
        assert re.match(r"Activation.sigma of 'broken' \(.*test_problem\..*\) cannot be compiled "
                        r"by numba: " + reason, message), message
        assert "scalar float -> float functions" in message
        assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("k", range(9))
def test_hermite_polynomials_against_numpy_and_the_three_term_recursion(k):
    from numpy.polynomial.hermite_e import hermeval

    from dmft.targets import hermite

    x = np.random.default_rng(k).standard_normal(1000) * 3
    x_before = x.copy()
    value = hermite(k, x)
    np.testing.assert_array_equal(x, x_before)  # the input is not modified
    coef = np.zeros(k + 1)
    coef[k] = 1.0
    np.testing.assert_allclose(value, hermeval(x, coef), rtol=1e-12, atol=1e-9)
    # the plain recursion from He_0 = 1, He_1 = x, to the last bit
    h_prev, h = np.ones_like(x), x.copy()
    for j in range(1, k):
        h_prev, h = h, (-j * h_prev) + x * h
    np.testing.assert_array_equal(value, h_prev if k == 0 else h)
