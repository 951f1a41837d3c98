"""Every notebook is committed stripped, has a `parameters` cell, and runs with PRESET="smoke".

The runs are what `make notebooks` does: papermill, kernel `framepack-lab` (the one `make setup`
registers; falls back to `python3`, i.e. this interpreter), cwd notebooks/, HF_HUB_OFFLINE=1,
executed copies in build/executed/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
EXECUTED_DIR = ROOT / "build" / "executed"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL = "framepack-lab"
CELL_TIMEOUT_S = 900  # per cell; smoke presets should need seconds

# an empty list means "no notebooks yet": pytest reports the tests as skipped
nb_params = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])


def _preset_value(source: str) -> object:
    """The value assigned to PRESET at the top level of a cell's source, or a sentinel."""
    missing = object()
    value = missing
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "PRESET" for t in targets):
                value = ast.literal_eval(node.value) if node.value is not None else missing
    return None if value is missing else value


@nb_params
def test_notebook_is_stripped(path: Path):
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; run `make strip`"
    assert "widgets" not in nb.metadata, f"{path.name}: saved widget state; run `make strip`"
    injected = [i for i, c in enumerate(nb.cells) if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    assert not injected, f"{path.name}: cells {injected} were injected by papermill; this is an executed copy"


@nb_params
def test_notebook_has_parameters_cell(path: Path):
    nb = nbformat.read(path, as_version=4)
    params = [
        c for c in nb.cells if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    assert len(params) == 1, f"{path.name}: expected exactly one code cell tagged `parameters`, got {len(params)}"
    preset = _preset_value(params[0].source)
    assert preset == "full", f'{path.name}: the parameters cell must define PRESET = "full", got {preset!r}'


def _kernel_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    # python3 is ipykernel's native spec: jupyter_client runs it with this interpreter
    return KERNEL if KERNEL in KernelSpecManager().find_kernel_specs() else "python3"


@pytest.mark.slow
@nb_params
def test_notebook_runs_smoke(path: Path, monkeypatch: pytest.MonkeyPatch):
    import papermill as pm

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the kernel inherits this environment
    EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(
        str(path),
        str(EXECUTED_DIR / path.name),
        parameters={"PRESET": "smoke"},
        kernel_name=_kernel_name(),
        cwd=str(NOTEBOOK_DIR),
        progress_bar=False,
        execution_timeout=CELL_TIMEOUT_S,
    )
