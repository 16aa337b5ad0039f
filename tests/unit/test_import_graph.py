"""Guard rails over the real import graph: the import contracts and the small `hab run` supervisor."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

from tests.import_contracts import find_module_cycles

ROOT = Path(__file__).resolve().parents[2]

# What the supervisor of the local stack must not load: the application's heavy dependencies.
HEAVY = ("sqlalchemy", "litestar", "pandas", "pyarrow", "lightgbm", "anthropic")


def test_the_import_contracts_are_kept():
    # The contracts live in pyproject.toml ([tool.importlinter]); `make lint` runs the same command.
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def _package(root: Path, name: str, modules: dict[str, str]) -> None:
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, source in modules.items():
        (package / f"{module}.py").write_text(textwrap.dedent(source))


def test_the_cycle_contract_counts_lazy_imports_and_leaves_type_checking_ones_out(tmp_path, monkeypatch):
    _package(
        tmp_path,
        "cyclic",
        {
            "a": "from cyclic import b\n",
            "b": "def later():\n    from cyclic import c\n",
            "c": "import cyclic.a\n",
            "d": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from cyclic import e\n",
            "e": "from cyclic import d\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic", exclude_type_checking_imports=True, cache_dir=None)
    assert find_module_cycles(graph) == [["cyclic.a", "cyclic.b", "cyclic.c", "cyclic.a"]]


def _loaded_after_import(module: str) -> list[str]:
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.parametrize("module", ["api.cli", "api.cli.stack.run"])
def test_the_hab_command_and_the_stack_supervisor_do_not_import_the_application(module):
    assert _loaded_after_import(module) == []


def test_the_import_probe_sees_a_heavy_import():
    # The control for the test above: a module of the application does show up as loading its stack.
    assert "sqlalchemy" in _loaded_after_import("api.db.tables")
