"""Run notebooks top to bottom and store their outputs in place, for the documentation.

The documentation shows the notebooks with the outputs stored in them and never executes them
(the build stays fast). After changing a notebook, store fresh outputs with::

    python docs/execute_notebooks.py                 # every notebook in notebooks/
    python docs/execute_notebooks.py fig1 fig3       # some of them

Each runs at its committed size (``SMALL = True``), with this checkout's ``dmft``, figures
stored as PNG. Execution timestamps are dropped so that re-running changes only what changed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def execute(path: Path, timeout: int = 1800) -> None:
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names without .ipynb (default: all)")
    args = parser.parse_args(argv)
    paths = ([NOTEBOOKS / f"{name}.ipynb" for name in args.names] if args.names
             else sorted(NOTEBOOKS.glob("*.ipynb")))
    # figures as stored PNG outputs (the kernel's inline backend; Agg would store none), and no
    # warning about the environment (tqdm without ipywidgets) in the stored outputs
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ["PYTHONWARNINGS"] = "ignore:IProgress not found"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    for path in paths:
        start = time.perf_counter()
        execute(path)
        print(f"{path.relative_to(REPO)}: {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
