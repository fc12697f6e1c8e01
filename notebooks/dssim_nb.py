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
    return frames


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
