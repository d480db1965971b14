"""Sphinx directives that read the package itself, so the reference pages follow the code.

``dmft-api``
    One autodoc entry per name listed in the content (names of ``dmft.__all__``, documented as
    ``dmft.<name>``, so internal moves do not break the build). The right autodoc directive is
    picked from the object's type (class, function, module or data).
``dmft-api-rest``
    The names of ``dmft.__all__`` that no ``dmft-api`` directive of the same page listed, so a
    new public name appears in the reference without editing the page.
``dmft-cli-table`` / ``dmft-cli-help``
    The table of ``dmft`` subcommands with their one-line help, and the full ``--help`` text
    of each, from the parser the command line itself builds (``dmft.cli.build_parser``).

Use them inside ``{eval-rst}`` blocks of MyST pages (they emit reStructuredText).

Docstrings are written as plain text, with ``|v|`` for norms and ``(*shape, n)`` for shapes,
which reStructuredText would read as substitution references and emphasis; :func:`escape_bars`
escapes those bars and stars before docutils sees them.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import re
import types

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.util import logging

logger = logging.getLogger(__name__)

_ENV_KEY = "dmft_api_documented"


def _public_names() -> list[str]:
    import dmft

    return list(dmft.__all__)


def _autodoc_lines(name: str) -> list[str]:
    """The reST autodoc directive documenting ``dmft.<name>``."""
    import dmft

    obj = getattr(dmft, name)
    target = f"dmft.{name}"
    if isinstance(obj, types.ModuleType):
        # a sub-package or module re-exported by dmft: its own public names (its __all__)
        return [f".. automodule:: {obj.__name__}", "   :members:", ""]
    if inspect.isclass(obj):
        kind = "autoexception" if issubclass(obj, BaseException) else "autoclass"
        return [f".. {kind}:: {target}", "   :members:", ""]
    if callable(obj):
        return [f".. autofunction:: {target}", ""]
    return [f".. autodata:: {target}", "   :no-value:", ""]


class _ParsesRst(Directive):
    def _parse(self, lines: list[str]) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="dmft_docs"), self.content_offset,
                                container, match_titles=False)
        return container.children


class ApiDirective(_ParsesRst):
    """Autodoc entries for the names listed one per line in the content."""

    has_content = True

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        documented = env.temp_data.setdefault(_ENV_KEY, set())
        public = set(_public_names())
        lines: list[str] = []
        for raw in self.content:
            name = raw.strip()
            if not name:
                continue
            if name not in public:
                logger.warning(f"dmft-api: {name!r} is not in dmft.__all__",
                               location=(env.docname, self.lineno))
                continue
            documented.add(name)
            lines += _autodoc_lines(name)
        return self._parse(lines)


class ApiRestDirective(_ParsesRst):
    """Autodoc entries for the public names no ``dmft-api`` directive of this page listed."""

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        documented = env.temp_data.get(_ENV_KEY, set())
        lines: list[str] = []
        for name in sorted(set(_public_names()) - documented, key=str.lower):
            lines += _autodoc_lines(name)
        if not lines:
            return []
        return self._parse(lines)


# ----------------------------------------------------------------------------- command line
@contextlib.contextmanager
def _columns(width: int):
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


_Subcommand = tuple[str, str, argparse.ArgumentParser]  # name, one-line help, its parser


def _subcommands() -> tuple[argparse.ArgumentParser, list[_Subcommand]]:
    from dmft import cli

    parser = cli.build_parser()
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    out = []
    for action in subs:
        helps = {c.dest: c.help or "" for c in action._choices_actions}
        for name, sub in action.choices.items():
            out.append((name, helps.get(name, ""), sub))
    return parser, out


class CliTableDirective(_ParsesRst):
    """A table: subcommand, what it does (its one-line help)."""

    def run(self) -> list[nodes.Node]:
        _, subs = _subcommands()
        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 20 80", "",
                 "   * - command", "     - what it does"]
        for name, help_text, _ in subs:
            lines += [f"   * - ``dmft {name}``", f"     - {help_text}"]
        lines.append("")
        return self._parse(lines)


class CliHelpDirective(Directive):
    """The ``--help`` text of ``dmft`` and of every subcommand, as literal blocks."""

    def run(self) -> list[nodes.Node]:
        with _columns(96):
            parser, subs = _subcommands()
            out: list[nodes.Node] = [nodes.rubric(text="dmft --help"),
                                     nodes.literal_block(text=parser.format_help())]
            for name, _, sub in subs:
                out.append(nodes.rubric(text=f"dmft {name} --help"))
                out.append(nodes.literal_block(text=sub.format_help()))
        return out


# ----------------------------------------------------------------------------- docstrings
_LITERAL = re.compile(r"(``.*?``|`[^`]*`)")
_BAR = re.compile(r"(?<!\\)\|")


# a star that unpacks in a tuple, "(*shape, n)" or "(a, *rest)": not the start of emphasis
_UNPACK_STAR = re.compile(r"(?:(?<=[(\[])|(?<=, ))\*(?=\w)")


def _escape_outside_literals(line: str) -> str:
    parts = _LITERAL.split(line)
    # even indices are outside inline literals and roles
    return "".join(_UNPACK_STAR.sub(r"\\*", _BAR.sub(r"\\|", p)) if i % 2 == 0 else p
                   for i, p in enumerate(parts))


def escape_bars(app, what, name, obj, options, lines: list[str]) -> None:
    """Escape ``|`` and unpacking ``*`` in docstring prose (a norm, a shape; not markup).

    Left alone: inline literals and roles, literal blocks (after ``::``), doctest blocks, and
    table or line-block rows (``| ...`` and ``+---``).
    """
    literal_indent = None  # indentation of the line that opened a literal block
    in_doctest = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:
            if not stripped or indent > literal_indent:
                continue
            literal_indent = None
        if in_doctest:
            if not stripped:
                in_doctest = False
            continue
        if stripped.startswith(">>>"):
            in_doctest = True
            continue
        if stripped.endswith("::"):
            literal_indent = indent
        if stripped.startswith(("| ", "+-", "+=")) or stripped == "|":
            continue
        lines[i] = _escape_outside_literals(line)


# ----------------------------------------------------------------------------- notebooks
def notebook_links(app, docname: str, source: list[str]) -> None:
    """Links from notebooks to pages, ``../docs/<page>.md``, as seen from ``docs/notebooks/``.

    The notebooks live in ``notebooks/`` (linked into the site as ``docs/notebooks``) and link to
    the pages by their path in the repository, which works on their own; inside the site the
    same page is ``/<page>.md`` (relative to the source folder).
    """
    if docname.startswith("notebooks/"):
        source[0] = source[0].replace("](../docs/", "](/")


def setup(app):
    app.connect("source-read", notebook_links)
    # after numpydoc (priority 500) has turned the numpy sections into reST
    app.connect("autodoc-process-docstring", escape_bars, priority=600)
    app.add_directive("dmft-api", ApiDirective)
    app.add_directive("dmft-api-rest", ApiRestDirective)
    app.add_directive("dmft-cli-table", CliTableDirective)
    app.add_directive("dmft-cli-help", CliHelpDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
