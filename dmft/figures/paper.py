"""The paper's figures 1-5 (docs/reproducing-the-paper.md): one entry point per figure.

By default a figure is true to the published panel (:mod:`dmft.figures.reproduction`, Fig. 5:
:mod:`dmft.figures.minibatch1`); ``caption_settings=True`` gives the version with the settings
the captions state (:mod:`dmft.figures.caption`).
"""

from __future__ import annotations

from collections.abc import Callable

from . import caption, minibatch1, reproduction
from .data import FigureData, Sizes

__all__ = ["FIGURES", "fig1", "fig2", "fig3", "fig4", "fig5", "flow"]

_CAPTION_NOTE = ("caption settings (--caption-settings): the published panels were made with "
                 "other settings (the default figure)")


def _either(name: str, sizes: Sizes | None, full: bool, caption_settings: bool,
            options: dict) -> FigureData:
    if caption_settings:
        data = getattr(caption, name)(sizes, full=full, **options)
        data.notes.append(_CAPTION_NOTE)
        return data
    return getattr(reproduction, name)(sizes, full=full, **options)


def fig1(sizes: Sizes | None = None, *, full: bool = False, caption_settings: bool = False,
         **options) -> FigureData:
    """Fig. 1: single-index targets tanh, He3, He4 (P = 1, n = 3d, eta = 0.1).

    Parameters
    ----------
    sizes : Sizes, optional
        Default ``DEFAULT_SIZES["fig1"]`` (``FULL_SIZES`` with ``full=True``).
    full : bool
        The paper's d = 5000 and 32 seeds.
    caption_settings : bool
        False (default): as published (erf student, each unit's signed overlap, He3 drawn as
        -M, the published curves overlaid; :func:`dmft.figures.reproduction.fig1`). True: the
        caption's ReLU and the mean oriented overlap (:func:`dmft.figures.caption.fig1`).
    **options
        Passed on (``T``, ``targets``, ``methods``, ``options``, ``progress``).

    Returns
    -------
    FigureData

    Examples
    --------
    >>> data = fig1(Sizes(samples=10**5, d=200, seeds=4), progress=False)  # doctest: +SKIP
    >>> data.plot().savefig("fig1.png")  # doctest: +SKIP
    """
    return _either("fig1", sizes, full, caption_settings, options)


def fig2(sizes: Sizes | None = None, *, full: bool = False, caption_settings: bool = False,
         **options) -> FigureData:
    """Fig. 2: multi-index targets, overlaps along C1 (top) and orthogonal to it (bottom).

    Parameters
    ----------
    sizes, full
        As in :func:`fig1`.
    caption_settings : bool
        False (default): the per-panel settings that reproduce the published panels
        (:func:`dmft.figures.reproduction.fig2`). True: the caption's (ReLU, n = 3d,
        z1 + z1 z2, one eta for all; :func:`dmft.figures.caption.fig2`).
    **options
        Passed on (``T``, ``cases``, ``methods``, ``options``, ``progress``; with
        ``caption_settings=True`` also ``eta``).

    Returns
    -------
    FigureData

    Examples
    --------
    >>> data = fig2(Sizes(samples=10**5, d=200, seeds=4), progress=False)  # doctest: +SKIP
    """
    return _either("fig2", sizes, full, caption_settings, options)


def fig3(sizes: Sizes | None = None, *, full: bool = False, caption_settings: bool = False,
         **options) -> FigureData:
    """Fig. 3: g* = z1 z2 z3 + He3(z4), P = 4, ReLU, n = 5d, eta = 0.2.

    Parameters
    ----------
    sizes, full
        As in :func:`fig1`.
    caption_settings : bool
        False (default): every unit's signed overlap with every z_k in one panel, as published.
        True: mean oriented overlaps along z4 and along z1..z3 in two panels, all methods.
    **options
        Passed on (``T``, ``methods``, ``options``, ``progress``).

    Returns
    -------
    FigureData

    Examples
    --------
    >>> data = fig3(Sizes(samples=10**5, d=200, seeds=4), progress=False)  # doctest: +SKIP
    """
    return _either("fig3", sizes, full, caption_settings, options)


def fig4(sizes: Sizes | None = None, *, full: bool = False, caption_settings: bool = False,
         **options) -> FigureData:
    """Fig. 4: Fig. 3's problem with minibatches of n/5, cyclic and with replacement.

    Parameters
    ----------
    sizes, full
        As in :func:`fig1`.
    caption_settings : bool
        False (default): as published, both panels against epochs, signed overlaps of every
        unit. True: the caption version (mean oriented overlaps, one-pass curves).
    **options
        Passed on (``epochs``, ``methods``, ``options``, ``progress``; with
        ``caption_settings=True``: ``n_blocks``, ``epochs``, ``T_bernoulli``, ...).

    Returns
    -------
    FigureData

    Examples
    --------
    >>> data = fig4(Sizes(samples=10**5, d=200, seeds=4), progress=False)  # doctest: +SKIP
    """
    return _either("fig4", sizes, full, caption_settings, options)


def fig5(sizes: Sizes | None = None, *, full: bool = False, caption_settings: bool = False,
         **options) -> FigureData:
    """Fig. 5: Fig. 3's problem with minibatches of size 1 (simulations; theory where valid).

    There is one version (the caption states the setting); ``caption_settings`` is accepted for
    a uniform interface and changes nothing.

    Parameters
    ----------
    sizes, full
        As in :func:`fig1` (``sizes.samples`` unused).
    caption_settings : bool
    **options
        Passed on to :func:`dmft.figures.minibatch1.fig5` (``epochs``, ``points_per_epoch``,
        ``orders``, ``progress``).

    Returns
    -------
    FigureData

    Examples
    --------
    >>> data = fig5(Sizes(samples=1, d=200, seeds=4), epochs=2)  # doctest: +SKIP
    """
    return minibatch1.fig5(sizes, full=full, **options)


def flow(sizes: Sizes | None = None, *, full: bool = False, caption_settings: bool = False,
         **options) -> FigureData:
    """Gradient flow: multi-pass (DMFT, simulations) against population gradient flow.

    Not a figure of the paper: it tests the paper's expectation (section 2) that gradient flow
    learns what one-pass methods cannot (:func:`dmft.figures.gradient_flow.flow`;
    ``caption_settings`` changes nothing).

    Parameters
    ----------
    sizes, full
        As in :func:`fig1`.
    caption_settings : bool
    **options
        Passed on (``t_max``, ``dt``, ``cases``, ``methods``, ``options``, ``progress``).

    Returns
    -------
    FigureData

    Examples
    --------
    >>> data = flow(Sizes(samples=10**5, d=200, seeds=4), t_max=2.0)  # doctest: +SKIP
    """
    from .gradient_flow import flow as flow_figure

    return flow_figure(sizes, full=full, **options)


FIGURES: dict[str, Callable[..., FigureData]] = {"fig1": fig1, "fig2": fig2, "fig3": fig3,
                                                  "fig4": fig4, "fig5": fig5, "flow": flow}
