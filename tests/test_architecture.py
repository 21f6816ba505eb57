"""The import contract in pyproject.toml ([tool.importlinter]): layers import downward only
(kernels -> autograd -> ops -> layers -> train -> runtime -> models -> io/deploy/analysis/zoo/
data/datasets -> cli) and no package has an import cycle between its modules. Imports inside
functions count. Same check as ``lint-imports --no-cache`` from the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


def test_import_contracts_are_kept(capsys):
    pytest.importorskip("importlinter")
    from importlinter import configuration
    from importlinter.application.use_cases import lint_imports

    configuration.configure()
    kept = lint_imports(config_filename=str(PYPROJECT), cache_dir=None, no_logo=True)
    report = capsys.readouterr().out
    assert kept, f"import contract broken (see pyproject.toml [tool.importlinter]):\n{report}"
    assert "Contracts: 2 kept, 0 broken" in report  # both contracts ran


def test_autograd_imports_nothing_above_kernels():
    """Tensor's operators come from cnnkit.ops (installed on import), not from autograd."""
    import ast

    import cnnkit
    from cnnkit import autograd

    tree = ast.parse(Path(autograd.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level}
    assert imported <= {"kernels.arith"}, imported
    t = cnnkit.Tensor([1.0, 2.0])
    assert (t + t).tolist() == [2.0, 4.0] and (t @ t).item() == 5.0
