"""Every solver reproduces the fixed-seed results stored in ``tests/data/golden``.

The files were written by ``python -m tests.golden_cases`` before the package was reorganised;
refactorings must leave results unchanged. On the CPU and library versions that wrote them
(``host.json``) the check is bit for bit. Elsewhere the vectorised sums may be associated
differently (another SIMD width), so the results are held to rounding instead.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.golden_cases import GOLDEN_DIR, arrays, cases, host_signature

_STORED = json.loads((GOLDEN_DIR / "host.json").read_text())
_SAME_HOST = all(host_signature()[k] == _STORED[k] for k in ("cpu", "numba", "numpy"))


@pytest.mark.parametrize("name", sorted(cases()))
def test_matches_stored_result(name):
    stored = np.load(GOLDEN_DIR / f"{name}.npz")
    now = arrays(cases()[name]())
    assert set(now) == set(stored.files), f"{name}: fields differ"
    for key in stored.files:
        if _SAME_HOST:
            np.testing.assert_array_equal(now[key], stored[key], err_msg=f"{name}.{key}")
        else:
            np.testing.assert_allclose(now[key], stored[key], rtol=1e-9, atol=1e-13,
                                       err_msg=f"{name}.{key} (other host: rounding only)")
