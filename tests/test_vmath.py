"""The vectorisable tanh of solvers.numerics.vmath against 80-bit tanhl, and its special values."""

import numba
import numpy as np
import pytest

from solvers.numerics.vmath import tanh as vtanh

pytestmark = pytest.mark.skipif(np.finfo(np.longdouble).nmant < 60,
                                reason="needs an extended-precision long double reference")


@numba.njit  # not cached: numba would not see edits of the callee
def _apply(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = vtanh(x[i])
    return out


def _ulps(x):
    """|vtanh(x) - tanh(x)| in units of the last place of the float64 nearest tanh(x)."""
    exact = np.tanh(x.astype(np.longdouble))
    err = np.abs(_apply(x).astype(np.longdouble) - exact)
    return np.asarray(err / np.spacing(np.abs(exact.astype(np.float64))), dtype=np.float64)


def test_tanh_within_two_ulps_everywhere():
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.uniform(-1.0, 1.0, 200_000), rng.uniform(-25.0, 25.0, 200_000),
        np.geomspace(1e-300, 30.0, 200_000), -np.geomspace(1e-300, 30.0, 200_000),
        rng.uniform(0.6, 0.65, 100_000),  # where the rational and exponential branches meet
        rng.uniform(19.0, 21.0, 10_000),  # the saturation point
    ])
    ulps = _ulps(x)
    assert ulps.max() <= 2.0, (ulps.max(), x[np.argmax(ulps)])
    assert np.mean(ulps > 1.0) < 0.05  # mostly correctly or faithfully rounded


def test_tanh_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -1e-310, 1e-8, 20.0, -1e300])
    y = _apply(x)
    np.testing.assert_array_equal(y[[0, 1, 2, 3, 8, 9]], [0.0, -0.0, 1.0, -1.0, 1.0, -1.0])
    assert not np.signbit(y[0]) and np.signbit(y[1])
    assert np.isnan(y[4])
    np.testing.assert_array_equal(y[5:7], x[5:7])  # tanh(x) = x to the last bit for tiny x
    assert y[7] == np.tanh(1e-8)


_BITS_OF_TANH = """
import sys
import numba
import numpy as np
from solvers.numerics.vmath import tanh

@numba.njit(fastmath={"reassoc", "contract"})  # as the kernels that call tanh are compiled
def loop(x, out):
    for i in range(x.size):
        out[i] = tanh(x[i])

x = np.linspace(-3.0, 3.0, 20001)
if sys.argv[1] == "alone-first":
    tanh(0.5)  # tanh compiled on its own before any kernel that calls it
out = np.empty_like(x)
loop(x, out)
print(out.view(np.int64).sum(dtype=np.uint64))
"""


def test_tanh_bits_do_not_depend_on_what_compiled_it_first(tmp_path):
    # without explicit flags, tanh compiled inside a kernel inherits the kernel's fastmath flags
    # and compiled on its own does not: a fresh numba cache then gave results 1 ulp apart,
    # depending on which happened first
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def checksum(order: str) -> str:
        cache = tmp_path / order
        cache.mkdir()
        env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
        return subprocess.run([sys.executable, "-c", _BITS_OF_TANH, order], env=env, cwd=root,
                              capture_output=True, text=True, check=True).stdout.strip()

    assert checksum("alone-first") == checksum("kernel-first")
