"""The notebooks in notebooks/ run top to bottom on a demo run, so they never rot."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOK_NAMES = ("01_explore_outputs.ipynb", "02_review_matches.ipynb", "03_model_diagnostics.ipynb",
                  "04_life_events_and_services.ipynb")


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory) -> Path:
    from residentview.demo import run_demo

    _, folder, _ = run_demo(tmp_path_factory.mktemp("demo"), records=1500)
    return folder


def execute(name: str, output: Path, replace: tuple[str, str] = ("", "")) -> nbformat.NotebookNode:
    """Run a notebook on `output`; `replace` edits one line of its source first, as a user would."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    old, new = replace
    for cell in notebook.cells:
        if old and old in cell.source:
            cell.source = cell.source.replace(old, new)
    # The kernel must be this virtualenv's python, whatever `python` is first on PATH.
    env = {**os.environ, "RESIDENTVIEW_OUTPUT": str(output),
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    client = NotebookClient(notebook, kernel_name="python3", timeout=120,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env=env)  # raises CellExecutionError, naming the cell, on any error
    return notebook


@pytest.mark.parametrize("name", ["01_explore_outputs.ipynb", "03_model_diagnostics.ipynb",
                                  "04_life_events_and_services.ipynb"])
def test_notebook_runs_top_to_bottom_on_a_demo_run(name, demo_output):
    notebook = execute(name, demo_output)
    assert all(cell.get("outputs") is not None for cell in notebook.cells if cell.cell_type == "code")


def test_notebooks_are_committed_without_outputs():
    for name in NOTEBOOK_NAMES:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), name


def test_review_notebook_imports_its_decisions_into_the_store(demo_output):
    from residentview.review.store import read_store

    queue = pd.read_csv(demo_output / "review_queue.csv", dtype=str, keep_default_na=False)
    assert len(queue) > 0, "the demo run should give the reviewer something to review"
    first, second = queue["review_id"].iloc[:2]
    execute("02_review_matches.ipynb", demo_output,
            replace=("decisions = {}", f'decisions = {{{first}: "match", {second}: "non-match"}}'))
    store = read_store(demo_output)
    decided = {(row.record_id_l, row.record_id_r): row.decision for row in store.itertuples()}
    for review_id, word in ((first, "match"), (second, "non-match")):
        row = queue.set_index("review_id").loc[review_id]
        pair = tuple(sorted([(row["source_l"], row["record_id_l"]), (row["source_r"], row["record_id_r"])],
                            key=lambda key: key[0] + "\x1f" + key[1]))
        assert decided[(pair[0][1], pair[1][1])] == word
    assert len(store) == 2
    assert (demo_output / "comparison_viewer.html").is_file()
