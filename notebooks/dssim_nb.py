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
