"""Helpers the notebooks share: run an experiment through the CLI and load its CSV files."""
import os
import pathlib
import subprocess
import tempfile

import pandas as pd

ROOT = pathlib.Path(__file__).resolve().parent.parent
DSSIM = os.environ.get("DSSIM", str(ROOT / "target" / "release" / "dssim"))
FIGURES = ROOT / "notebooks" / "figures"


def run(experiment, *sets, jobs=None):
    """Run experiments/<experiment>.toml with --set overrides; return its CSVs as DataFrames."""
    out = pathlib.Path(tempfile.mkdtemp(prefix="dssim-nb-"))
    cmd = [DSSIM, "run", str(ROOT / "experiments" / f"{experiment}.toml"), "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    frames = {}
    for name in ["runs", "points", "latency", "timeseries", "components"]:
        path = out / f"{name}.csv"
        if path.exists() and path.stat().st_size > 0:
            frames[name] = pd.read_csv(path)
    if (out / "trace.json").exists():
        frames["trace"] = trace_spans(out / "trace.json")
    return frames


def trace_spans(path):
    """trace.json ([output] trace = N) as one DataFrame row per span: run, request, its
    description, name, cat, start_ms, dur_ms, the component a phase is in, a visit's status."""
    import json

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


def save(fig, name):
    """Save a figure under notebooks/figures/ (the README shows some of them)."""
    FIGURES.mkdir(exist_ok=True)
    fig.savefig(FIGURES / f"{name}.png", dpi=110, bbox_inches="tight")


def cli(*args):
    """Run any other dssim command (estimate, capacity, ...) and return its standard output."""
    res = subprocess.run([DSSIM, *map(str, args)], capture_output=True, text=True)
    if res.returncode not in (0, 1):
        raise RuntimeError(f"dssim {' '.join(map(str, args))} failed ({res.returncode}): {res.stderr}")
    return res.stdout


def capacity(experiment, vary, slos, *sets, lo=None, replications=1, tolerance=0.05, find="max"):
    """`dssim capacity` on experiments/<experiment>.toml; return (capacity.csv, last output line)."""
    out = pathlib.Path(tempfile.mkdtemp(prefix="dssim-cap-"))
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
    return pd.read_csv(out / "capacity.csv"), (found[0] if found else text.strip().splitlines()[-1])
