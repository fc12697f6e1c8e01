"""Build the notebooks from the percent-format sources in notebooks/src/*.py.

Cells start with `# %%` (code) or `# %% [markdown]` (markdown; lines prefixed with `# `).
A cell marked `# %% [solution]` (code) or `# %% [markdown] [solution]` is part of the
instructor's answer key:

- notebooks/NN-*.ipynb            the student version: every solution code cell becomes an
                                  empty "your work here" cell, solution markdown is left out;
- notebooks/solutions/NN-*.ipynb  the instructor's version, with every cell.

Run: python notebooks/py2nb.py           (writes both)
     python notebooks/py2nb.py --check   (exit 1 if a committed notebook is out of date)
"""
import pathlib
import sys

import nbformat

here = pathlib.Path(__file__).resolve().parent
PLACEHOLDER = "# Your work here: write the code, then set the answer variable above.\n"
SOLUTIONS_PATH = ('import sys\n'
                  'sys.path.insert(0, "..")  # the instructor\'s copy lives in notebooks/solutions/\n')


def parse(src):
    """The cells of one source file as (kind, is_solution, text)."""
    cells, head, lines = [], None, []

    def flush():
        text = "\n".join(lines).strip("\n")
        if head is None:
            return
        kind, solution = head
        if kind == "md":
            text = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in text.splitlines())
        if text:
            cells.append((kind, solution, text))

    for line in src.read_text().splitlines():
        if line.startswith("# %%"):
            flush()
            head, lines = ("md" if "[markdown]" in line else "code", "[solution]" in line), []
        else:
            lines.append(line)
    flush()
    return cells


def build(src, solutions):
    cells, first_code = [], True
    for kind, solution, text in parse(src):
        tags = ["solution"] if solution else []
        if solution and not solutions:
            if kind == "md":
                continue
            text, tags = PLACEHOLDER, ["exercise"]
        if kind == "code" and first_code and solutions:
            text = SOLUTIONS_PATH + text
        if kind == "code":
            first_code = False
        cell = nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text)
        if tags:
            cell.metadata["tags"] = tags
        cell["id"] = f"cell-{len(cells)}"  # stable files: no random cell ids
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb) + "\n"


def main():
    check = "--check" in sys.argv
    (here / "solutions").mkdir(exist_ok=True)
    stale = []
    for src in sorted((here / "src").glob("*.py")):
        for folder, solutions in ((here, False), (here / "solutions", True)):
            path = folder / f"{src.stem}.ipynb"
            text = build(src, solutions)
            if check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path.relative_to(here.parent)))
            else:
                path.write_text(text)
                print("wrote", path.relative_to(here.parent))
    if check:
        if stale:
            print("out of date (run python notebooks/py2nb.py):", *stale, sep="\n  ")
            sys.exit(1)
        print("notebooks up to date with notebooks/src/")


if __name__ == "__main__":
    main()
