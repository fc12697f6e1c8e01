"""Build notebooks/*.ipynb from the percent-format sources in notebooks/src/*.py.

Cells start with `# %%` (code) or `# %% [markdown]` (markdown; lines prefixed with `# `).
Run: python notebooks/py2nb.py
"""
import pathlib

import nbformat

here = pathlib.Path(__file__).resolve().parent
for src in sorted((here / "src").glob("*.py")):
    cells, kind, lines = [], None, []

    def flush():
        text = "\n".join(lines).strip("\n")
        if kind == "md":
            cells.append(nbformat.v4.new_markdown_cell("\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in text.splitlines())))
        elif kind == "code" and text:
            cells.append(nbformat.v4.new_code_cell(text))

    for line in src.read_text().splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("md" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, here / f"{src.stem}.ipynb")
    print("wrote", src.stem + ".ipynb")
