"""Execute every notebook in this folder headless; exit 1 if any cell fails.

Usage: python notebooks/run_all.py [--save] [NAME ...]
  --save   writes outputs back into the .ipynb
  NAME     run only the notebooks whose file name contains NAME (e.g. 03)
The notebooks find the dssim binary through $DSSIM (default: target/release/dssim).
"""
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient

here = pathlib.Path(__file__).resolve().parent
names = [a for a in sys.argv[1:] if not a.startswith("--")]
paths = [p for p in sorted(here.glob("*.ipynb")) if not names or any(n in p.name for n in names)]
failed = []
start_all = time.time()
for path in paths:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(here)}})
    start = time.time()
    try:
        client.execute()
        print(f"ok      {path.name}  {time.time() - start:.1f} s")
        if "--save" in sys.argv:
            nbformat.write(nb, path)
    except Exception as e:  # a failing cell: report it and go on to the next notebook
        print(f"FAILED  {path.name}: {str(e)[:2000]}")
        failed.append(path.name)
print(f"{len(failed)} failed of {len(paths)} notebooks in {time.time() - start_all:.1f} s")
sys.exit(1 if failed else 0)
