"""The default picture of a Trajectory: overlaps and errors against time, with error bars."""

from __future__ import annotations

import numpy as np


def plot_trajectory(traj, *, axes=None, label=None, **errorbar_kw):
    """Draw M, Q and the errors of ``traj`` on three axes; see :meth:`Trajectory.plot`."""
    import matplotlib.pyplot as plt  # optional dependency, imported on use
    from matplotlib.ticker import MaxNLocator

    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        new_figure = True
    else:
        axes = list(axes)
        if len(axes) < 3:
            raise ValueError(f"axes must hold three Axes (M, Q, errors), got {len(axes)}")
        fig, new_figure = axes[0].figure, False
    ax_m, ax_q, ax_e = axes[:3]
    prefix = traj.method if label is None else label
    style = {"ms": 3, "lw": 1, "capsize": 2, **({} if "fmt" in errorbar_kw else {"marker": "o"})}
    style.update(errorbar_kw)
    t = traj.t
    P, K = traj.problem.P, traj.problem.K

    def draw(ax, values, errors, entry, color):
        ax.errorbar(t, values, yerr=errors, color=color, label=f"{prefix} {entry}", **style)

    for n, (j, k) in enumerate(np.ndindex(P, K)):
        draw(ax_m, traj.M[:, j, k], traj.M_se[:, j, k], f"M[{j},{k}]", f"C{n % 10}")
    pairs = [(j, l) for j in range(P) for l in range(j, P)]  # Q is symmetric
    for n, (j, l) in enumerate(pairs):
        draw(ax_q, traj.Q[:, j, l], traj.Q_se[:, j, l], f"Q[{j},{l}]", f"C{n % 10}")
    draw(ax_e, traj.e_gen, traj.e_gen_se, "e_gen", "C0")
    draw(ax_e, traj.e_train, traj.e_train_se, "e_train", "C1")

    titles = ("M: unit j, teacher direction k", "Q: student Gram matrix", "errors")
    for ax, title in zip((ax_m, ax_q, ax_e), titles, strict=True):
        ax.set_xlabel("t (GD steps)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, fontsize="medium")
        if len(ax.get_legend_handles_labels()[0]) <= 24:  # more entries would hide the curves
            ax.legend(fontsize="x-small", ncol=2 if P * K > 4 else 1)
    if new_figure:
        p = traj.problem
        fig.suptitle(f"{traj.method}: target={p.target.name}, P={p.P}, "
                     f"activation={p.activation.name}, alpha={p.alpha:g}, eta={p.eta:g}, "
                     f"lam={p.lam:g}, schedule={p.schedule}", fontsize="small")
        fig.tight_layout()
    return fig
