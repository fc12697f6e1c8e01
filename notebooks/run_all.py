"""Execute every notebook headless, the way a class checkout runs them; exit 1 on any failure.

Usage: python notebooks/run_all.py [--save] [--student | --solutions] [NAME ...]
  --save        write the executed notebooks (with outputs) back over the originals
  --student     run only the student versions (notebooks/NN-*.ipynb)
  --solutions   run only the instructor's versions (notebooks/solutions/NN-*.ipynb)
  NAME          run only the notebooks whose file name contains NAME (e.g. 03)
The notebooks find the dssim binary through $DSSIM (default: target/release/dssim).
With DSSIM_FIGURES=DIR the figures the README shows are written to DIR.

What it checks, per notebook:
- every cell runs without an error;
- every section has at least one inline plot. A *section* is a markdown heading of level
  two (a line starting with `## `); the cells from it to the next such heading belong to
  it, and the cells before the first belong to none. A plot is an image/png output, or an
  inline HTML animation (matplotlib's to_jshtml). So a notebook fails if it has fewer plots
  than sections, or a section that draws nothing;
- nothing is written into the checkout: the notebooks run from a read-only copy of
  notebooks/, experiments/ and models/, and the copy must be unchanged afterwards;
- no temporary folder is left behind: the kernel gets its own empty TMPDIR, which must be
  empty again after each notebook.
Sliders have no widget front end here: DSSIM_NB_STATIC=1 makes them draw their static grid.
A simulation replays byte for byte from its configuration and seed, so identical runs are
done once per invocation (DSSIM_NB_CACHE, a folder removed at the end): the instructor's
copies reuse the student copies' runs.
"""
import hashlib
import os
import pathlib
import shutil
import stat
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

here = pathlib.Path(__file__).resolve().parent
root = here.parent
args = sys.argv[1:]
names = [a for a in args if not a.startswith("--")]
kinds = ["student", "solutions"]
if "--student" in args:
    kinds = ["student"]
if "--solutions" in args:
    kinds = ["solutions"]


def snapshot(folder):
    """Every file under folder with its content hash: a change anywhere shows."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def set_writable(folder, writable):
    for p in [folder, *folder.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def plots_per_section(nb):
    """[(heading, number of inline plots)] for each `## ` section of an executed notebook."""
    sections = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("## "):
                    sections.append([line[3:].strip(), 0])
        elif cell.cell_type == "code" and sections:
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if "image/png" in data or "_anim_img" in data.get("text/html", ""):
                    sections[-1][1] += 1
    return sections


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="dssim-run-all-"))
    copy, scratch = work / "checkout", work / "tmp"
    scratch.mkdir()
    (work / "runs").mkdir()
    (copy / "notebooks").mkdir(parents=True)
    for f in here.glob("*.ipynb"):
        shutil.copy(f, copy / "notebooks")
    shutil.copy(here / "dssim_nb.py", copy / "notebooks")
    shutil.copytree(here / "solutions", copy / "notebooks" / "solutions", ignore=shutil.ignore_patterns("*checkpoints*"))
    for d in ("experiments", "models"):
        shutil.copytree(root / d, copy / d)
    set_writable(copy, False)
    before = snapshot(copy)
    env_backup = dict(os.environ)
    os.environ["DSSIM"] = os.environ.get("DSSIM", str(root / "target" / "release" / "dssim"))
    os.environ["DSSIM_NB_STATIC"] = "1"
    os.environ["TMPDIR"] = str(scratch)
    os.environ["DSSIM_NB_CACHE"] = str(work / "runs")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

    jobs = []
    for kind in kinds:
        folder = copy / "notebooks" / ("solutions" if kind == "solutions" else "")
        for path in sorted(folder.glob("*.ipynb")):
            if not names or any(n in path.name for n in names):
                jobs.append((kind, path))
    failed = []
    start_all = time.time()
    try:
        for kind, path in jobs:
            label = f"{kind:9s} {path.name}"
            nb = nbformat.read(path, as_version=4)
            client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                    resources={"metadata": {"path": str(path.parent)}})
            start = time.time()
            try:
                client.execute()
            except Exception as e:  # a failing cell: report it and go on to the next notebook
                print(f"FAILED  {label}: {str(e)[:2000]}")
                failed.append(label)
                continue
            sections = plots_per_section(nb)
            plots = sum(n for _, n in sections)
            empty = [h for h, n in sections if n == 0]
            left = sorted(p.name for p in scratch.iterdir())
            problems = []
            if plots < len(sections) or empty:
                problems.append(f"{plots} inline plots for {len(sections)} sections; none in: {empty}")
            if left:
                problems.append(f"left temporary files behind: {left}")
                for p in scratch.iterdir():
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink()
            if problems:
                print(f"FAILED  {label}: " + "; ".join(problems))
                failed.append(label)
                continue
            print(f"ok      {label}  {time.time() - start:.1f} s, {len(sections)} sections, {plots} plots")
            if "--save" in args:
                original = here / path.relative_to(copy / "notebooks")
                nbformat.write(nb, original)
        after = snapshot(copy)
        if after != before:
            changed = sorted(set(after.items()) ^ set(before.items()))
            print("FAILED  the notebooks wrote into the (read-only) checkout:", changed[:10])
            failed.append("checkout changed")
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
        set_writable(copy, True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failed)} failed of {len(jobs)} notebooks in {time.time() - start_all:.1f} s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
