"""Helpers the notebooks share: run an experiment through the CLI and load its CSV files,
draw figures a student can read on their own, check a prediction, and offer live sliders.

- run(), capacity(), cli(): the dssim command line; every output folder is a temporary one,
  removed before the function returns (a read-only checkout works).
- finish(fig, name): plain tick labels, legends off the data, counts never below zero; the
  figure shows inline under its cell. With DSSIM_FIGURES=DIR in the environment it is also
  written to DIR/<name>.png (how the README's figures are refreshed); otherwise nothing is
  written anywhere.
- check(prediction, measured, ...): says how close a student's prediction was, or shows the
  measured answer when the prediction is still None.
- live(draw, grid, **controls): ipywidgets sliders that re-run a short simulation on each
  change; without a widget front end (DSSIM_NB_STATIC=1, no ipywidgets, or not in a kernel)
  it draws the settings in `grid` side by side instead.
"""
import hashlib
import json
import math
import numbers
import os
import pathlib
import shutil
import subprocess
import tempfile

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogFormatter, LogLocator, NullFormatter, ScalarFormatter

ROOT = pathlib.Path(__file__).resolve().parent.parent
DSSIM = os.environ.get("DSSIM", str(ROOT / "target" / "release" / "dssim"))

plt.rcParams.update({
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.formatter.useoffset": False,
    "axes.formatter.use_mathtext": False,
    "axes.formatter.limits": (-6, 9),
    "axes.titlesize": 11,
    "legend.fontsize": 8,
})


def _read(out):
    frames = {}
    for name in ["runs", "points", "latency", "timeseries", "components", "instances"]:
        path = out / f"{name}.csv"
        if path.exists() and path.stat().st_size > 0:
            frames[name] = pd.read_csv(path)
    if (out / "trace.json").exists():
        frames["trace"] = trace_spans(out / "trace.json")
    return frames


def _cached(kind, args):
    """The folder of an earlier identical call when DSSIM_NB_CACHE names a folder (run_all.py
    sets one for the length of its run: a run replays byte for byte from its configuration
    and seed, so the instructor's copy of a notebook reuses the student copy's runs)."""
    folder = os.environ.get("DSSIM_NB_CACHE")
    if not folder:
        return None
    key = hashlib.sha256(json.dumps([kind, *map(str, args)]).encode()).hexdigest()[:32]
    return pathlib.Path(folder) / key


def run(experiment, *sets, jobs=None):
    """Run experiments/<experiment>.toml with --set overrides; return its CSVs as DataFrames
    (and trace.json as a DataFrame of spans under "trace"). The output folder is temporary."""
    cache = _cached("run", [experiment, *sets, jobs])
    if cache is not None and (cache / "runs.csv").exists():
        return _read(cache)
    with tempfile.TemporaryDirectory(prefix="dssim-nb-") as tmp:
        out = pathlib.Path(tmp) / "out"
        cmd = [DSSIM, "run", str(ROOT / "experiments" / f"{experiment}.toml"), "--out", str(out)]
        for s in sets:
            cmd += ["--set", s]
        if jobs:
            cmd += ["--jobs", str(jobs)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"dssim run {experiment} failed ({res.returncode}): {res.stderr}")
        if cache is not None:
            shutil.copytree(out, cache, dirs_exist_ok=True)
        return _read(out)


def trace_spans(path):
    """trace.json ([output] trace = N) as one DataFrame row per span: run, request, its
    description, name, cat, start_ms, dur_ms, the component a phase is in, a visit's status."""
    events = json.loads(pathlib.Path(path).read_text())["traceEvents"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e["ph"] == "M" and e["name"] == "thread_name"}
    rows, begins = [], {}
    for e in events:
        key = (e.get("pid"), e.get("tid"))
        if e["ph"] == "X":
            rows.append((key, e["name"], e["cat"], e["ts"] / 1e3, e["dur"] / 1e3,
                         e["args"].get("in", ""), e["args"].get("status", "")))
        elif e["ph"] == "b":
            begins[e["id"]] = e
        elif e["ph"] == "e" and e["id"] in begins:
            b = begins.pop(e["id"])
            rows.append((key, e["name"], e["cat"], b["ts"] / 1e3, (e["ts"] - b["ts"]) / 1e3, "", ""))
    df = pd.DataFrame(rows, columns=["key", "name", "cat", "start_ms", "dur_ms", "within", "status"])
    df["run"] = df["key"].map(lambda k: k[0])
    df["request"] = df["key"].map(lambda k: k[1])
    df["description"] = df["key"].map(names)
    return df.drop(columns="key")


def cli(*args):
    """Run any other dssim command (estimate, capacity, ...) and return its standard output."""
    res = subprocess.run([DSSIM, *map(str, args)], capture_output=True, text=True)
    if res.returncode not in (0, 1):
        raise RuntimeError(f"dssim {' '.join(map(str, args))} failed ({res.returncode}): {res.stderr}")
    return res.stdout


def capacity(experiment, vary, slos, *sets, lo=None, replications=1, tolerance=0.05, find="max"):
    """`dssim capacity` on experiments/<experiment>.toml; return (capacity.csv, last output line)."""
    cache = _cached("capacity", [experiment, vary, *slos, *sets, lo, replications, tolerance, find])
    if cache is not None and (cache / "line.txt").exists():
        return pd.read_csv(cache / "capacity.csv"), (cache / "line.txt").read_text()
    with tempfile.TemporaryDirectory(prefix="dssim-cap-") as tmp:
        out = pathlib.Path(tmp) / "out"
        args = ["capacity", ROOT / "experiments" / f"{experiment}.toml", "--vary", vary,
                "--replications", replications, "--tolerance", tolerance, "--find", find, "--out", out]
        if lo is not None:
            args += ["--lo", lo]
        for s in slos:
            args += ["--slo", s]
        for s in sets:
            args += ["--set", s]
        text = cli(*args)
        found = [l for l in text.splitlines() if l.startswith("capacity:")]
        line = found[0] if found else text.strip().splitlines()[-1]
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            shutil.copy(out / "capacity.csv", cache / "capacity.csv")
            (cache / "line.txt").write_text(line)
        return pd.read_csv(out / "capacity.csv"), line


# ---------------------------------------------------------------- figures

def plain(v, _pos=None):
    """A tick label as a plain number: 0.01, 5, 600, 2,000 (never 6×10² or 1e3)."""
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.6g}"
    return f"{v:.4g}"


def _tidy_axis(axis, data_lo):
    scale = axis.get_scale()
    if not isinstance(axis.get_major_formatter(), (ScalarFormatter, LogFormatter)):
        return  # category names, pandas' bar labels: leave them
    if scale == "log":
        lo, hi = axis.get_view_interval()
        decades = math.log10(hi / lo) if lo > 0 and hi > 0 else 9
        subs = (1, 2, 5) if decades <= 2.2 else (1, 3) if decades <= 3.5 else (1,)
        axis.set_major_locator(LogLocator(base=10, subs=subs))
        axis.set_minor_formatter(NullFormatter())
    axis.set_major_formatter(FuncFormatter(plain))
    if scale in ("linear", "symlog") and data_lo is not None and data_lo >= 0:
        lo, hi = axis.get_view_interval()
        if lo < 0 <= hi:  # a count or a share: no negative ticks
            if axis is axis.axes.xaxis:
                axis.axes.set_xlim(left=0)
            else:
                axis.axes.set_ylim(bottom=0)


def label(ax, x=None, y=None, title=None, *, xscale=None, yscale=None, legend=False, title_size=None):
    """Scales, axis labels, title and legend of one axes in one call: the lines that end
    most figures. A scale is a name ("log") or a name and its options (("log", {"base": 2}));
    `legend` is True, or the legend's options ({"fontsize": 8}); `title_size` is the
    title's font size."""
    for set_scale, scale in ((ax.set_xscale, xscale), (ax.set_yscale, yscale)):
        if scale is not None:
            name, options = (scale, {}) if isinstance(scale, str) else scale
            set_scale(name, **options)
    if x is not None:
        ax.set_xlabel(x)
    if y is not None:
        ax.set_ylabel(y)
    if title is not None:
        ax.set_title(title, **({} if title_size is None else {"fontsize": title_size}))
    if legend:
        ax.legend(**({} if legend is True else legend))


def throughput_and_p99(x, pts, xlabel):
    """A new figure of a sweep's throughput (left axis, `pts["throughput_rps"]`) and p99
    latency (right axis, `pts["p99_ms"]`) over `x`; returns the figure and the left axes."""
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax1.plot(x, pts["throughput_rps"], "o-", label="throughput (left)")
    label(ax1, xlabel, "throughput (requests/s)")
    ax2 = ax1.twinx()
    ax2.plot(x, pts["p99_ms"], "r^--", label="p99 latency (right)")
    ax2.set_ylabel("p99 latency (ms)")
    ax2.grid(False)
    return fig, ax1


def your_answer(ax, answer, text, axis="y", legend=False):
    """If the reader gave an answer, mark it on `ax`: a dashed line across the plot at that
    value (`axis="x"`: a vertical one), labelled "your answer: " + `text`.format(answer)."""
    if answer is None:
        return
    line = ax.axhline if axis == "y" else ax.axvline
    line(answer, color="C2", ls="--", label="your answer: " + text.format(answer))
    if legend:
        ax.legend()


def finish(fig, name=None):
    """Make `fig` readable on its own and, if DSSIM_FIGURES names a folder, save it there as
    <name>.png. Plain tick labels on every axis (log axes get ticks at 1, 2, 5 × 10^k),
    linear axes whose data are never negative start at 0, and every legend drawn inside an
    axes is moved to the right of it, off the data."""
    for ax in [a for top in fig.axes for a in [top, *top.child_axes]]:
        lim = ax.dataLim
        finite = lim.width == lim.width and not math.isinf(lim.x0)
        _tidy_axis(ax.xaxis, lim.x0 if finite else None)
        _tidy_axis(ax.yaxis, lim.y0 if finite else None)
        leg = ax.get_legend()
        if leg is not None and not getattr(leg, "_dssim_outside", False):
            handles, labels = ax.get_legend_handles_labels()
            if handles:
                new = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1),
                                borderaxespad=0, title=leg.get_title().get_text() or None)
                new._dssim_outside = True
    folder = os.environ.get("DSSIM_FIGURES")
    if folder and name:
        pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
        fig.savefig(pathlib.Path(folder) / f"{name}.png", dpi=110, bbox_inches="tight")


def save(fig, name):
    """Kept for old notebooks: the same as finish()."""
    finish(fig, name)


# ---------------------------------------------------------------- predictions

def check(prediction, measured, unit="", tolerance=0.25, what="the simulation"):
    """Compare a student's prediction with what the simulation measured and say how close it
    was. `prediction` None: show the measured answer and ask for a prediction next time.
    Numbers are compared by ratio (within `tolerance`, e.g. 25%); anything else by equality."""
    unit = f" {unit}" if unit else ""

    def show(v):
        if isinstance(v, numbers.Real) and not isinstance(v, (bool, int)):
            return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        return str(v)

    if prediction is None or prediction is Ellipsis:
        verb = "measured" if isinstance(measured, numbers.Real) else "gave"
        print(f"No prediction yet. {what[:1].upper() + what[1:]} {verb} {show(measured)}{unit}.\n"
              "Next time write your guess in the cell above before running the experiment.")
        return None
    if isinstance(measured, numbers.Real) and isinstance(prediction, numbers.Real) \
            and not isinstance(prediction, bool) and not isinstance(measured, bool):
        m, p = float(measured), float(prediction)
        if m == p:
            verdict = "exactly right."
        elif m != 0 and abs(p - m) <= tolerance * abs(m):
            verdict = f"within {tolerance:.0%}: well predicted."
        elif m != 0 and p != 0 and (p / m > 0):
            ratio = p / m
            verdict = (f"{ratio:.2g}× the measured value: too high." if ratio > 1
                       else f"{1 / ratio:.2g}× below the measured value: too low.")
        else:
            verdict = f"off by {show(p - m)}{unit}."
        print(f"You predicted {show(p)}{unit}; {what} measured {show(m)}{unit}: {verdict}")
        return abs(p - m) <= tolerance * abs(m) if m else p == m
    ok = str(prediction).strip().lower() == str(measured).strip().lower()
    print(f"You predicted {prediction!r}; {what} gave {measured!r}: "
          + ("right." if ok else "not this time — the figure shows why."))
    return ok


# ---------------------------------------------------------------- live sliders

def widgets_live():
    """True when sliders can be shown: ipywidgets importable, running in a Jupyter kernel,
    and DSSIM_NB_STATIC not set (run_all.py sets it: nbclient has no widget front end)."""
    if os.environ.get("DSSIM_NB_STATIC"):
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and hasattr(ip, "kernel")


def live(draw, grid, figsize=(6.5, 3.6), **controls):
    """Sliders for class. `draw(ax, **settings)` runs a short simulation and draws it on `ax`.
    With a widget front end, each control (an ipywidgets widget, or anything `interact`
    accepts) re-runs `draw` when it changes (on release, not while dragging). Without one,
    `draw` is called for each settings dict in `grid` and the results are drawn side by side:
    the same figure, static."""
    if widgets_live():
        import ipywidgets as w
        from IPython.display import display

        def one(**settings):
            fig, ax = plt.subplots(figsize=figsize)
            draw(ax, **settings)
            finish(fig)
            plt.show()

        for c in controls.values():
            if isinstance(c, w.ValueWidget) and hasattr(c, "continuous_update"):
                c.continuous_update = False
        display(w.interactive(one, **controls))
        return None
    n = len(grid)
    fig, axes = plt.subplots(1, n, figsize=(figsize[0] * 0.62 * n, figsize[1]), sharey=True, squeeze=False)
    for ax, settings in zip(axes[0], grid):
        draw(ax, **settings)
    finish(fig)
