"""The layer order holds: import-linter checks pyproject.toml's contract (README, "Project layout")."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _layers() -> list[str]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    return [name.strip() for layer in layers for name in re.split(r"[|:]", layer)]


def test_every_module_of_the_package_has_a_layer():
    """A new top-level module or package must be placed in the order, or the contract would not see it."""
    package = ROOT / "swin_trt"
    present = {f"swin_trt.{p.stem}" for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")}
    present |= {f"swin_trt.{p.name}" for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert present - set(_layers()) == set(), "add these to [tool.importlinter] layers in pyproject.toml"
    assert set(_layers()) - present == set(), "the contract names modules that do not exist"


def test_no_import_goes_up_a_layer_or_round_a_cycle():
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if command is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout
