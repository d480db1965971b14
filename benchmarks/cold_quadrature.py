"""Cold compile time of the quadrature and one-pass kernels.

``python -m benchmarks.cold_quadrature`` runs each scenario in a child process with an empty
``NUMBA_CACHE_DIR`` (a fresh install's first call) and reports, per numba kernel compiled at top
level, the CPU time of its compilation (thread time: on a shared machine it varies far less
than wall time), callees included. Scenarios: e_gen with a closed-form activation (every
solver's path), the one-pass theory in the paper setting (the path of ``dmft run``), e_gen with
a smooth activation (the inner-rule cross kernel), and the one-pass theory with P = 3 (explicit
nodes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SCENARIOS = {
    "e_gen, relu (closed form)": """
import numpy as np, dmft
from dmft.gaussian import gen_error
p = dmft.Problem(T=7)
M = np.zeros((7, 2, 2)); M[:, 0, 0] = 0.3; M[:, 1, 1] = -0.2
gen_error(p, M, np.eye(2)[None] + np.einsum("tjk,tlk->tjl", M, M))
""",
    "one-pass, paper setting": """
import dmft
dmft.solve(dmft.Problem(T=2), method="one-pass")
""",
    "e_gen, tanh (inner rule)": """
import numpy as np, dmft
from dmft.gaussian import gen_error
p = dmft.Problem(activation="tanh", T=7)
M = np.zeros((7, 2, 2)); M[:, 0, 0] = 0.3; M[:, 1, 1] = -0.2
gen_error(p, M, np.eye(2)[None] + np.einsum("tjk,tlk->tjl", M, M))
""",
    "one-pass, erf, P = 3": """
import dmft
dmft.solve(dmft.Problem(target="z1z2z3-he3", P=3, activation="erf", alpha=4.0, eta=0.25, T=2),
           method="one-pass")
""",
}

# runs in the child: records (dispatcher, CPU seconds) of every top-level compilation
_CHILD = r"""
import json, sys, time
import numba.core.event as ev
stack, out = [], {}
class Timer(ev.Listener):
    def on_start(self, event):
        stack.append(time.thread_time())
    def on_end(self, event):
        dt = time.thread_time() - stack.pop()
        if not stack:
            f = event.data["dispatcher"].py_func
            key = f"{f.__module__}.{f.__qualname__}"
            out[key] = out.get(key, 0.0) + dt
ev.register("numba:compile", Timer())
exec(sys.argv[1])
print(json.dumps(out))
"""


def cold_compile(code: str) -> dict[str, float]:
    """Top-level compile CPU seconds per kernel for ``code`` run with an empty numba cache."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="numba-cold-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(root))
        proc = subprocess.run([sys.executable, "-c", _CHILD, code], env=env, cwd=root,
                              capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    for name, code in SCENARIOS.items():
        times = cold_compile(code)
        print(f"{name}: {sum(times.values()):.2f} s")
        for kernel, sec in sorted(times.items(), key=lambda kv: -kv[1]):
            if sec >= 0.05:
                print(f"  {sec:6.2f} s  {kernel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
