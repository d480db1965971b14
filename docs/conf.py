"""Sphinx configuration of the dmft documentation.

Build: ``sphinx-build docs docs/_build`` (``pip install -e '.[docs]'`` first). Pages are MyST
markdown; the API reference comes from the numpy-style docstrings (autodoc + numpydoc); the
notebooks in ``notebooks/`` (linked as ``docs/notebooks``) are rendered by myst-nb with the
outputs stored in them, never executed here.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
# this checkout's dmft first, whatever an editable install points at
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(DOCS / "_ext"))

import dmft  # noqa: E402

project = "dmft"
author = "the dmft developers"
copyright = "2026, the dmft developers"
release = dmft.__version__
version = release

extensions = [
    "myst_nb",  # MyST markdown pages and notebooks (brings myst_parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "dmft_docs",  # docs/_ext/dmft_docs.py: API listing from dmft.__all__, CLI reference
]

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]

# MyST: $...$ and $$...$$ math, ::: fences, definition lists, anchors for "page.md#section" links
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# notebooks are shown with the outputs stored in them (figures included), never executed here
nb_execution_mode = "off"
nb_merge_streams = True

# autodoc and numpydoc
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpy-style docstrings carry the types and shapes
autodoc_default_options = {"members": True}
numpydoc_show_class_members = False  # members are documented by autodoc's :members:
numpydoc_class_members_toctree = False
numpydoc_validation_checks: set[str] = set()

html_theme = "pydata_sphinx_theme"
html_title = f"dmft {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path: list[str] = []
html_show_sourcelink = False
