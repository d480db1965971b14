"""Benchmark output: JSON, markdown tables, the accuracy-vs-cost figure, baseline comparison."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

__all__ = ["to_json", "markdown", "plot", "compare_with_baseline", "baseline_from",
           "merge_baseline", "SPEED_FACTOR"]

SPEED_FACTOR = 3.0  # a side-by-side ratio may worsen by this factor before it is a regression


# ------------------------------------------------------------------------------ JSON
def _clean(obj):
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def to_json(result: dict, path: Path) -> None:
    """Write ``result`` as indented JSON (non-finite numbers as null)."""
    path.write_text(json.dumps(_clean(result), indent=1) + "\n")


# ------------------------------------------------------------------------------ baseline
def baseline_from(result: dict) -> dict:
    """The parts of a result that later runs are compared with."""
    acc = {r["id"]: {"passed": bool(r["passed"]), "max_abs_z": r.get("max_abs_z"),
                     "max_abs_z_equiv": r.get("max_abs_z_equiv"), "z_crit": r.get("z_crit")}
           for r in result.get("accuracy", [])}
    speed = {}
    for r in result.get("speed", []):
        speed[r["id"]] = {"completed": bool(r["completed"]), "ratio_wall": r.get("ratio_wall"),
                          "ratio_cpu": r.get("ratio_cpu"),
                          "peak_rss_gib": r["package"].get("peak_rss_gib"),
                          "load": r.get("load_before")}
    floors = {f["name"]: bool(f["met"]) for f in result.get("floors", [])}
    return {"accuracy": acc, "speed": speed, "floors": floors}


def merge_baseline(old: dict | None, result: dict) -> dict:
    """``old`` updated with the entries of ``result`` (quick and full runs share one file)."""
    new = baseline_from(result)
    out = {"note": "written by `python -m benchmarks --update-baseline`; see README, Benchmarks",
           "speed_factor": SPEED_FACTOR, "accuracy": {}, "speed": {}, "floors": {},
           "sources": {}}
    if old:
        for key in ("accuracy", "speed", "floors", "sources"):
            out[key].update(old.get(key, {}))
    for key in ("accuracy", "speed", "floors"):
        out[key].update(new[key])
    meta = result["meta"]
    out["sources"][meta["mode"]] = {k: meta.get(k) for k in
                                    ("date", "commit", "load_start", "load_end", "cpu_count")}
    return out


# speed ratios are judged only below this 1-minute load average per core
OVERLOAD = 2.0


def compare_with_baseline(result: dict, baseline: dict | None,
                          speed_factor: float = SPEED_FACTOR) -> tuple[list[str], list[str]]:
    """Regressions of ``result`` relative to ``baseline``.

    Rules: an accuracy result fails (max |z| above its critical value) where the baseline
    passed or has no entry; a side-by-side speed ratio is below the baseline's divided by
    ``speed_factor``; a configuration that completed in the baseline no longer completes; a
    gated floor met in the baseline is missed. A speed ratio measured while the machine was
    overloaded (1-minute load average above ``OVERLOAD`` times the cores, before or after the
    pair) is not judged, only noted: the package's numba threads then compete for the cores
    and the single-threaded baseline does not, so the ratio says nothing about the code.

    Returns
    -------
    regressions, notes : lists of str
    """
    base = baseline or {"accuracy": {}, "speed": {}, "floors": {}}
    cores = result.get("meta", {}).get("cpu_count") or os.cpu_count() or 1
    regressions, notes = [], []
    for r in result.get("accuracy", []):
        b = base.get("accuracy", {}).get(r["id"])
        if r["passed"]:
            continue
        what = r.get("error") or (
            f"normal-equivalent max|z| = {_num(r.get('max_abs_z_equiv'))} > "
            f"{_num(r.get('z_crit'))} at {r.get('worst_entry')}; plain max|z| "
            f"{_num(r.get('max_abs_z'))}")
        if b is None:
            regressions.append(f"{r['id']}: fails ({what}); no baseline entry")
        elif b["passed"]:
            regressions.append(f"{r['id']}: fails ({what}); the baseline passed "
                               f"(normal-equivalent max|z| {_num(b.get('max_abs_z_equiv'))})")
        else:
            notes.append(f"{r['id']}: fails as in the baseline ({what})")
    for r in result.get("speed", []):
        b = base.get("speed", {}).get(r["id"])
        if b is None:
            notes.append(f"{r['id']}: no baseline entry, not compared")
            continue
        if b["completed"] and not r["completed"]:
            regressions.append(f"{r['id']}: did not complete ({r['package'].get('error')}); "
                               "the baseline did")
        ratio, b_ratio = r.get("ratio_wall"), b.get("ratio_wall")
        if ratio is not None and b_ratio:
            if ratio < b_ratio / speed_factor:
                text = (f"{r['id']}: speed ratio numpy/package {ratio:.3g} < baseline "
                        f"{b_ratio:.3g} / {speed_factor:g}")
                load = max(r.get("load_before") or 0.0, r.get("load_after") or 0.0)
                if load > OVERLOAD * cores:
                    notes.append(f"{text}; not judged: load average {load:.1f} on {cores} cores")
                else:
                    regressions.append(text)
    for f in result.get("floors", []):
        was = base.get("floors", {}).get(f["name"])
        if f["gate"] and was and not f["met"]:
            regressions.append(f"floor missed (met in the baseline): {f['name']} "
                               f"(measured {f['value']})")
    return regressions, notes


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.3g}"


# ------------------------------------------------------------------------------ markdown
def markdown(result: dict) -> str:
    """The result as markdown: context, accuracy table, speed table, floors, regressions."""
    meta = result["meta"]
    lines = [
        f"# dmft benchmarks: `--{meta['mode']}` run"
        + (f", solver variant `{meta['variant']}`" if meta["variant"] != "correct" else ""),
        "",
        f"- date {meta['date']}, commit `{meta['commit']}`, {meta['cpu_count']} CPU cores, "
        f"numba threads {meta['numba_threads']}, numpy {meta['numpy']}, numba {meta['numba']}",
        f"- machine load (1-min load average) at start {meta['load_start']:.1f}, "
        f"at end {meta['load_end']:.1f}; total wall time {meta['total_wall_s']:.0f} s",
    ]
    lines += [f"- {note}" for note in meta.get("notes", [])]
    lines.append("")
    if result.get("accuracy"):
        lines += _accuracy_table(result["accuracy"], result.get("cases", {}))
    if result.get("speed"):
        lines += _speed_table(result["speed"])
    if result.get("floors"):
        lines += ["## Floors of issue 5", "", "| floor | measured | met |", "|---|---|---|"]
        for f in result["floors"]:
            val = f["value"]
            shown = (f"{val:.3g}" if isinstance(val, float) else str(val)) if val is not None \
                else "n/a"
            lines.append(f"| {f['name']} | {shown} ({f['metric']}) | "
                         f"{'yes' if f['met'] else '**no**'} |")
        lines.append("")
    lines += ["## Comparison with the baseline", ""]
    regs = result.get("regressions", [])
    lines += [f"- **REGRESSION** {r}" for r in regs] or ["- no regression"]
    lines += [f"- {n}" for n in result.get("baseline_notes", [])]
    lines.append("")
    return "\n".join(lines)


def _accuracy_table(records: list[dict], cases: dict) -> list[str]:
    lines = [
        "## Accuracy against the validation references (docs/validation.md)", "",
        "z = (DMFT - reference) / combined SE per compared entry. Standard errors estimated "
        "from 16 replicas (and the references' seeds) give z Student-t tails, so each z is "
        "mapped to the normal quantile of equal tail probability (Welch-Satterthwaite degrees "
        "of freedom): `z eq`. A row passes when max `z eq` is below the Bonferroni-corrected "
        "critical value `crit` of a 3-sigma test over its entries (the `dmft.compare` rule). "
        "`max z` is the plain score. Errors are over the compared entries; `rms SE` is the "
        "DMFT's own reported standard error, `ref rms SE` the reference's. CPU s counts all "
        "threads.", "",
    ]
    for name, note in cases.items():
        lines.append(f"- **{name}**: {note}")
    lines += ["", "| case | estimator | S | max z | max z eq | crit | pass | worst entry | "
              "rms err | max err | rms SE | ref rms SE | wall s | CPU s |",
              "|---|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['estimator']} | {r['samples']:.0e} | | | | "
                         f"**error** | {r['error']} | | | | | | |")
            continue
        lines.append(
            f"| {r['case']} | {r['estimator']} | {r['samples']:.0e} | {r['max_abs_z']:.2f} | "
            f"{r['max_abs_z_equiv']:.2f} | {r['z_crit']:.2f} | "
            f"{'yes' if r['passed'] else '**no**'} | {r['worst_entry']} | "
            f"{r['rms_err']:.2e} | {r['max_abs_err']:.2e} | {r['rms_se']:.2e} | "
            f"{r['ref_rms_se']:.2e} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} |")
    lines.append("")
    return lines


def _speed_table(records: list[dict]) -> list[str]:
    lines = [
        "## Speed and peak memory (fresh subprocess per configuration, medians of repeats)", "",
        "Package = `dmft.solve` (Stein, 16 replicas, auto storage; includes Q and e_gen of every "
        "replica) or `dmft.simulate` (1 seed, includes e_gen); baseline = "
        "`benchmarks.numpy_dmft.solve_numpy` (one solve, no replicas, no e_gen) or "
        "`benchmarks.bench_simulator.plain_numpy_relu_gd`. Paper ReLU problem (tanh-he1-he3, "
        "alpha 3, eta 0.2). One BLAS thread in every child. ratio = baseline / package "
        "(> 1: the package is faster). Peak RSS = VmHWM of the child, interpreter included "
        "(~0.2 GiB after imports and warm-up).", "",
        "| configuration | repeats | package wall s | CPU s | peak GiB | storage | "
        "baseline wall s | CPU s | peak GiB | ratio wall | ratio CPU | load |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        a, b = r["package"], r.get("baseline") or {}
        name = r["id"].removeprefix("speed/")
        if not a.get("repeats"):
            lines.append(f"| {name} | 0 | **failed**: {a.get('error')} | | | | | | | | | |")
            continue
        cells = [name, str(a["repeats"]), f"{a['wall_s']:.2f}", f"{a['cpu_s']:.2f}",
                 f"{a['peak_rss_gib']:.2f}", str(a.get("storage", ""))]
        if b.get("repeats"):
            cells += [f"{b['wall_s']:.2f}", f"{b['cpu_s']:.2f}", f"{b['peak_rss_gib']:.2f}",
                      f"{r['ratio_wall']:.2f}", f"{r['ratio_cpu']:.2f}"]
        else:
            cells += ["-"] * 5
        cells.append(f"{r['load_before']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return lines


# ------------------------------------------------------------------------------ figure
def plot(result: dict, path: Path) -> None:
    """Accuracy vs CPU cost per case (top row) and speed sweeps (bottom row, if measured)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    acc = [r for r in result.get("accuracy", []) if "error" not in r]
    speed = result.get("speed", [])
    cases = list(dict.fromkeys(r["case"] for r in acc))
    groups = [g for g in ("S", "T", "P", "simulator") if any(_in_group(r, g) for r in speed)]
    ncol = max(len(cases), len(groups), 1)
    nrow = 1 + bool(groups)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.8 * nrow), squeeze=False)
    for ax, case in zip(axes[0], cases, strict=False):
        _plot_case(ax, [r for r in acc if r["case"] == case], case)
    for ax in axes[0, len(cases):]:
        ax.axis("off")
    if groups:
        for ax, group in zip(axes[1], groups, strict=False):
            _plot_speed(ax, [r for r in speed if _in_group(r, group)], group)
        for ax in axes[1, len(groups):]:
            ax.axis("off")
    for ax in axes.flat:  # short decades: label 1, 2, 5 x 10^k, no overlapping minor labels
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() != "log":
                continue
            axis.set_minor_formatter(NullFormatter())
            lo, hi = sorted(axis.get_view_interval())
            if lo > 0 and math.log10(hi / lo) < 2.5:
                axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                axis.set_major_formatter(FormatStrFormatter("%g"))
    meta = result["meta"]
    fig.suptitle(f"dmft benchmarks ({meta['mode']}, variant {meta['variant']}, {meta['date']}, "
                 f"load {meta['load_start']:.0f}-{meta['load_end']:.0f} on "
                 f"{meta['cpu_count']} cores)", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_case(ax, recs: list[dict], case: str) -> None:
    markers = {"stein": "o", "pathwise": "s"}
    for k, est in enumerate(dict.fromkeys(r["estimator"] for r in recs)):
        rs = sorted((r for r in recs if r["estimator"] == est), key=lambda r: r["samples"])
        cpu = np.array([r["cpu_s"] for r in rs])
        color = f"C{k}"
        ax.loglog(cpu, [r["rms_err"] for r in rs], marker=markers.get(est, "^"), color=color,
                  label=f"{est}: rms error vs reference")
        ax.loglog(cpu, [r["rms_se"] for r in rs], ls="--", color=color, alpha=0.7,
                  label=f"{est}: DMFT's own rms SE")
        for r in rs:
            ax.annotate(f"{r['samples']:.0e}".replace("e+0", "e"), (r["cpu_s"], r["rms_err"]),
                        fontsize=6, xytext=(2, 2), textcoords="offset points")
    ref_se = max((r["ref_rms_se"] for r in recs), default=0.0)
    if ref_se > 0:
        ax.axhline(ref_se, color="k", ls=":", lw=1, label="reference rms SE")
    ax.set_title(case, fontsize="small")
    ax.set_xlabel("CPU seconds per solve")
    ax.set_ylabel("rms error over compared entries")
    ax.legend(fontsize="xx-small")


def _in_group(rec: dict, group: str) -> bool:
    spec = rec["spec"]
    if group == "simulator":
        return spec["kind"] == "simulate"
    if spec["kind"] != "dmft":
        return False
    fixed = {"S": {"T": 7, "P": 2}, "T": {"P": 2, "S": 10**5}, "P": {"T": 7, "S": 10**5}}[group]
    return all(spec[k] == v for k, v in fixed.items())


def _plot_speed(ax, recs: list[dict], group: str) -> None:
    key = {"S": "S", "T": "T", "P": "P", "simulator": "d"}[group]
    recs = sorted(recs, key=lambda r: r["spec"][key])
    x = [r["spec"][key] for r in recs]
    pkg = [r["package"].get("wall_s", np.nan) for r in recs]
    base = [(r.get("baseline") or {}).get("wall_s", np.nan) for r in recs]
    name = "dmft.simulate" if group == "simulator" else "dmft.solve"
    ax.loglog(x, pkg, marker="o", label=f"{name} (median wall)")
    ax.loglog(x, base, marker="s", label="plain numpy (median wall)")
    ax.set_xlabel(key)
    ax.set_ylabel("wall seconds")
    fixed = {"S": "T=7, P=2", "T": "P=2, S=1e5", "P": "T=7, S=1e5", "simulator": "1 seed, T=7"}
    ax.set_title(f"time vs {key} ({fixed[group]})", fontsize="small")
    ax.legend(fontsize="xx-small")
