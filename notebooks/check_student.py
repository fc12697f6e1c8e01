"""CI check: the student notebooks hold no answers, and every notebook is built from its source.

- notebooks/*.ipynb and notebooks/solutions/*.ipynb are exactly what py2nb.py builds from
  notebooks/src/*.py (run `python notebooks/py2nb.py` after editing a source);
- a student notebook has no cell tagged `solution`, no markdown that was a solution, and no
  line of any solution cell's code;
- in a student notebook every prediction (`my_prediction...`) and every exercise answer
  (`answer_N`) is assigned `None`, and has no outputs stored;
- every `## ` section except "Exercises" asks for a prediction before its first experiment
  (a `my_prediction = None` cell) and compares it afterwards (`dssim_nb.check(`);
- every exercise answer has a solution cell in the instructor's copy that sets it.
Exit 1 with a list of problems, 0 when clean.
"""
import pathlib
import re
import subprocess
import sys

import nbformat

here = pathlib.Path(__file__).resolve().parent
problems = []
res = subprocess.run([sys.executable, str(here / "py2nb.py"), "--check"], capture_output=True, text=True)
if res.returncode != 0:
    problems.append(res.stdout.strip())

assign = re.compile(r"^\s*(my_prediction\w*|answer_\w+)\s*=\s*(.+?)\s*(#.*)?$")
for student in sorted(here.glob("*.ipynb")):
    nb = nbformat.read(student, as_version=4)
    key = nbformat.read(here / "solutions" / student.name, as_version=4)
    solution_lines = {l.strip() for c in key.cells if "solution" in c.metadata.get("tags", [])
                      for l in c.source.splitlines() if l.strip() and not l.strip().startswith("#")
                      and l.strip() not in {"answer_1", "answer_2", "answer_3"}}
    solution_md = {c.source for c in key.cells if c.cell_type == "markdown" and "solution" in c.metadata.get("tags", [])}
    answers = set()
    section, asked, checked, sections = None, False, False, []
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []):
            problems.append(f"{student.name}: a solution cell: {cell.source[:60]!r}")
        if cell.cell_type == "markdown":
            if cell.source in solution_md:
                problems.append(f"{student.name}: solution markdown: {cell.source[:60]!r}")
            for line in cell.source.splitlines():
                if line.startswith("## "):
                    sections.append((section, asked, checked))
                    section, asked, checked = line[3:].strip(), False, False
            continue
        if cell.get("outputs"):
            problems.append(f"{student.name}: stored outputs in {cell.source[:40]!r}")
        for line in cell.source.splitlines():
            m = assign.match(line)
            if m and m.group(2) != "None":
                problems.append(f"{student.name}: {m.group(1)} is set to {m.group(2)!r}, not None")
            if m and m.group(1).startswith("answer_"):
                answers.add(m.group(1))
            if m and m.group(1).startswith("my_prediction"):
                asked = True
            if line.strip() in solution_lines:
                problems.append(f"{student.name}: a line of the answer key: {line.strip()!r}")
            if "dssim_nb.run(" in line and not asked and section and section != "Exercises":
                problems.append(f"{student.name}: section {section!r} runs an experiment before asking for a prediction")
                asked = True
            if "dssim_nb.check(" in line:
                checked = True
    sections.append((section, asked, checked))
    for name, a, c in sections:
        if name and name != "Exercises" and not (a and c):
            problems.append(f"{student.name}: section {name!r} lacks a prediction cell or its check")
    keyed = {m.group(1) for c in key.cells if "solution" in c.metadata.get("tags", [])
             for l in c.source.splitlines() if (m := assign.match(l)) and m.group(2) != "None"}
    for a in sorted(answers - keyed):
        problems.append(f"{student.name}: {a} has no solution in solutions/{student.name}")
    if "## Exercises" not in "\n".join(c.source for c in nb.cells if c.cell_type == "markdown") and answers:
        problems.append(f"{student.name}: exercises without an Exercises section")
    print(f"{student.name}: {len(sections) - 1} sections, {len(answers)} exercises")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print("student notebooks: no answers, every section predicts then checks")
