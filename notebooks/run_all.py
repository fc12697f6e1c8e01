"""Execute every notebook in this folder headless; exit 1 if any cell fails.

Usage: python notebooks/run_all.py [--save]   (--save writes outputs back into the .ipynb)
The notebooks find the dssim binary through $DSSIM (default: target/release/dssim).
"""
import pathlib
import sys

import nbformat
from nbclient import NotebookClient

here = pathlib.Path(__file__).resolve().parent
failed = []
for path in sorted(here.glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(here)}})
    try:
        client.execute()
        print(f"ok      {path.name}")
        if "--save" in sys.argv:
            nbformat.write(nb, path)
    except Exception as e:  # a failing cell: report it and go on to the next notebook
        print(f"FAILED  {path.name}: {str(e)[:2000]}")
        failed.append(path.name)
print(f"{len(failed)} failed of {len(list(here.glob('*.ipynb')))} notebooks")
sys.exit(1 if failed else 0)
