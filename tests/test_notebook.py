"""examples/course_comparison.ipynb runs headless in a real Jupyter kernel, at its smoke size,
and shows the comparison's table and a picture."""
from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "course_comparison.ipynb"


def test_the_course_notebook_shows_the_table_and_the_curves_in_a_real_kernel(tmp_path,
                                                                              monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("CNNBENCH_NOTEBOOK_SIZE", "smoke")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("cnnbench-comparison" in h and "test acc" in h and "mlp" in h for h in html)
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pngs) >= 2  # the curves and the confusion matrix
    assert not [o for o in outputs if o.get("output_type") == "error"]
    sweeps = list((tmp_path / "outputs" / "multirun").iterdir())
    assert len(sweeps) == 1
    shown = [o["data"]["text/plain"] for o in outputs if "text/plain" in o.get("data", {})]
    shown += [o["text"] for o in outputs if o.get("output_type") == "stream"]
    ended = [ln for text in shown for ln in text.splitlines() if "completed, test accuracy" in ln]
    assert ended and len(ended) == len(set(ended)), ended  # each job's last line, once
    logs = [job / "train.log" for job in sweeps[0].iterdir() if (job / "train.log").is_file()]
    assert len(logs) == len(ended)  # and each job's log has the lines the cell showed
    assert all("completed, test accuracy" in log.read_text() for log in logs)
