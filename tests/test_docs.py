"""The documentation builds without warnings, and the pages the code refers to exist.

The build renders the notebooks from their stored outputs (no execution), so it takes seconds,
not minutes; it runs in the fast suite, which is what CI runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
# where code, tests, notebooks and pages point to documentation pages
REFERRING = ("dmft", "solvers", "tests", "benchmarks", "notebooks", "examples", "docs", "data",
             ".ci")
PAGE_REF = re.compile(r"docs/[\w./-]+?\.md")
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".json", ".toml", ".txt", ".cff"}


def test_docs_build_without_warnings(tmp_path):
    for module in ("sphinx", "myst_nb", "numpydoc", "pydata_sphinx_theme"):
        pytest.importorskip(module)
    env = dict(os.environ)
    # this checkout's dmft, whatever an editable install points at
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "")
                                                        .split(os.pathsep) if p])
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           str(DOCS), str(tmp_path / "html")]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"sphinx-build failed:\n{done.stdout}\n{done.stderr}"
    for page in ("index", "api", "conventions", "theory/dmft", "notebooks/fig2"):
        assert (tmp_path / "html" / f"{page}.html").is_file(), page


def _referring_files():
    files = [REPO / "README.md", REPO / "CHANGELOG.md"]
    for top in REFERRING:
        files += [p for p in (REPO / top).rglob("*")
                  if p.suffix in TEXT_SUFFIXES and "_build" not in p.parts
                  and ".ipynb_checkpoints" not in p.parts and p.is_file()]
    return [f for f in files if f.is_file()]


def test_pages_referred_to_exist():
    missing = {}
    for path in _referring_files():
        for ref in PAGE_REF.findall(path.read_text(encoding="utf-8", errors="replace")):
            if not (REPO / ref).is_file():
                missing.setdefault(ref, []).append(str(path.relative_to(REPO)))
    assert not missing, f"documentation pages referred to but missing: {missing}"


def _doc_texts():
    """Pages, README, changelog, citation, and the notebooks' markdown cells."""
    texts = {}
    for path in [*DOCS.rglob("*.md"), *DOCS.rglob("*.py"), REPO / "README.md",
                 REPO / "CHANGELOG.md", REPO / "CITATION.cff", REPO / "benchmarks" / "README.md"]:
        if path.is_file() and "_build" not in path.parts:
            texts[str(path.relative_to(REPO))] = path.read_text(encoding="utf-8")
    nbformat = pytest.importorskip("nbformat")
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        texts[str(path.relative_to(REPO))] = "\n".join(
            c.source for c in nb.cells if c.cell_type == "markdown")
    return texts


# notebooks the site shows with their stored figures
WITH_FIGURES = ("fig1", "fig2", "fig3", "fig4", "authors_script")
# (each written so that this file does not match itself)
OUTSIDE_PATH = re.compile(r"\.\./share[d]|/wor[k]/|/hom[e]/|/roo[t]/")
PRIVATE_DOCUMENT = re.compile(r"\bSPE[C]\b")


def test_notebook_outputs_are_stored_and_self_contained():
    """The site renders stored outputs: the figure notebooks carry their figures, and no output
    names a path of the machine that ran them (refresh: python docs/execute_notebooks.py)."""
    nbformat = pytest.importorskip("nbformat")
    problems = []
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        outputs = [o for c in nbformat.read(path, as_version=4).cells
                   if c.cell_type == "code" for o in c.get("outputs", [])]
        if path.stem in WITH_FIGURES and not any("image/png" in o.get("data", {})
                                                 for o in outputs):
            problems.append(f"{path.name}: no stored figure")
        for out in outputs:
            text = str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
            text += "".join(out.get("traceback", []))
            if OUTSIDE_PATH.search(text):
                problems.append(f"{path.name}: output names {OUTSIDE_PATH.search(text).group(0)}")
    assert not problems, problems


def test_docs_are_self_contained():
    """No reference to a document users do not have, nor to a path outside the checkout."""
    bad = {}
    for name, text in _doc_texts().items():
        hits = PRIVATE_DOCUMENT.findall(text)
        hits += OUTSIDE_PATH.findall(text)
        if hits:
            bad[name] = sorted(set(hits))
    assert not bad, f"pages naming a private document or an outside path: {bad}"


def test_citation_version_matches_the_package():
    # tomllib is Python >= 3.11; the project supports 3.10
    version = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(),
                        re.M).group(1)
    cff = (REPO / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(rf'^version: "?{re.escape(version)}"?$', cff, re.M), version
    assert "2402.03220" in cff  # the paper is cited too


def test_code_tests_benchmarks_and_notebooks_are_self_contained():
    """Code, help texts, tests, benchmarks and notebooks (code, outputs) name no private
    document and no path outside the checkout: they point to the pages that ship."""
    bad = {}
    for path in _referring_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        hits = PRIVATE_DOCUMENT.findall(text) + OUTSIDE_PATH.findall(text)
        if hits:
            bad[str(path.relative_to(REPO))] = sorted(set(hits))
    assert not bad, f"files naming a private document or an outside path: {bad}"
