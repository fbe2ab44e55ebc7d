"""Every notebook in notebooks/ is committed clean and executes at small settings (the DCGAN one twice).

The notebooks run in a Jupyter kernel (nbclient) started outside notebooks/,
with ``AIGC_TF_NOTEBOOK_SMALL=1`` and their run/export root in a temporary
directory; the second execution is "Run All" again on the same directories (one notebook suffices: the
reuse is NotebookRun's, shared by every notebook).
"""

from __future__ import annotations

import os

import nbformat
import pytest

from tests.helpers import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= {"dcgan_digits", "gpt_embedded"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs_and_with_cell_ids(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)  # also fails on missing cell ids (nbformat 4.5+)
    for cell in nb.cells:
        assert cell.get("id"), f"{path.name}: a cell has no id"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: committed with outputs; strip them"
            assert cell.execution_count is None, f"{path.name}: committed with execution counts"
    sources = "\n".join(c.source for c in nb.cells)
    assert "../" not in sources, f"{path.name} depends on the working directory"


def _execute(path, workdir):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_twice_from_any_directory_into_its_own_directories(path, tmp_path, monkeypatch):
    root = tmp_path / "notebook_runs"
    monkeypatch.setenv("AIGC_TF_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("AIGC_TF_NOTEBOOK_DIR", str(root))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    first = _execute(path, workdir)
    # "Run All" again reuses the finished run; checked on the cheaper notebook only (the same NotebookRun code)
    second = _execute(path, workdir) if path.stem == "dcgan_digits" else None
    runs = sorted(p for p in root.iterdir() if p.name not in ("exports", "searches"))
    assert len(runs) == 1 and (runs[0] / "model.keras").is_file()
    exports = [p for p in (root / "exports").iterdir() if p.is_dir()]  # notebook_<config name>
    assert len(exports) == 1 and exports[0].name == f"notebook_{runs[0].name.rsplit('-', 1)[0]}"
    assert f'name: "{exports[0].name}"' in (root / "exports" / "models.config").read_text()  # TF Serving's list
    versions = ["1", "2"] if second is not None else ["1"]
    assert sorted(p.name for p in exports[0].iterdir()) == versions
    assert list(workdir.iterdir()) == []  # nothing written where the notebook was started
    for nb in (first, second) if second is not None else (first,):
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors
    if second is not None:
        reused = [o.get("text", "") for c in second.cells if c.cell_type == "code" for o in c.outputs]
        assert any("already holds this finished run" in t for t in reused)
    if path.stem == "dcgan_digits":
        # The grid is shown inline: an image output, not just a figure's repr.
        images = [o for c in first.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
        assert len(images) >= 2  # the sample grid and the training curves
