#!/usr/bin/env python3
"""Check that every TensorRT Python name swin-trt uses exists in TensorRT 10.3 (JetPack 6) and 11.4.

A developer tool, not run by CI. It reads swin-trt's own calls; the parsing, builder config and build go
through Polygraphy, which NVIDIA tests against each TensorRT release (>= 0.49.26 for TensorRT 11). TensorRT's builder libraries cannot be installed everywhere, but the
bindings wheels can be downloaded; their extension module cannot be imported without libnvinfer, yet the
names pybind11 registers sit in it as NUL-terminated strings. So:

1. collect names from the code (AST): every ``trt.A.B`` chain, ``hasattr/getattr(trt, "A")``, attributes
   used on TensorRT objects (variables named builder, network, config, parser, ... and whatever their
   methods return), and the methods of classes that subclass ``trt.X`` (overrides TensorRT calls);
2. download ``tensorrt-cu12-bindings==10.3.0`` and ``tensorrt-cu13-bindings==11.4.0.106`` with pip;
3. look each name up among the .so's strings and the names ``tensorrt_bindings/__init__.py`` defines.

A name is "exact" when a string equals it, "suffix" when it only ends a longer string (the linker merges
``"desc"`` into ``"get_error_desc"``): present, but weaker evidence. A line ending in ``# trt-names: 10-only``
(or ``11-only``) is checked only against that version, for version-dependent code paths.

    python scripts/check_tensorrt_names.py [--wheel-dir DIR]

Exit status 1 when a name is missing from a version it is checked against.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [*sorted((ROOT / "swin_trt" / "engine").glob("*.py")), ROOT / "swin_trt" / "environment.py",
           ROOT / "swin_trt" / "backends" / "tensorrt.py"]
WHEELS = {"10.3": "tensorrt-cu12-bindings==10.3.0", "11.4": "tensorrt-cu13-bindings==11.4.0.106"}
MODULE_ALIASES = {"trt"}  # names the tensorrt module is bound to (also as self.trt)
TRT_OBJECTS = {"builder", "network", "config", "parser", "error", "profile", "engine", "context", "runtime",
               "registry", "layer", "tensor", "cache", "plan", "monitor"}
MARKER = re.compile(r"#\s*trt-names:\s*(10|11)-only")


def _base_name(node: ast.AST) -> str | None:
    """``x`` for ``x`` and for ``self.x``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _is_module(node: ast.AST) -> bool:
    return _base_name(node) in MODULE_ALIASES


def _is_trt_value(node: ast.AST) -> bool:
    """A TensorRT object: a conventional variable, a call into trt, or what a TensorRT object returns."""
    if _base_name(node) in TRT_OBJECTS:
        return True
    if isinstance(node, ast.Call):
        return _is_trt_value(node.func) or (isinstance(node.func, ast.Attribute) and _is_module(node.func.value))
    if isinstance(node, ast.Attribute):
        return _is_trt_value(node.value) or _is_module(node.value)
    if isinstance(node, ast.Subscript):
        return _is_trt_value(node.value)
    return False


def collect_names(paths) -> dict[str, list[tuple[str, int, str | None]]]:
    """name -> [(file, line, only-version or None)]."""
    found = defaultdict(list)
    for path in paths:
        text = path.read_text()
        lines = text.splitlines()
        rel = str(path.relative_to(ROOT))

        def add(name, node):
            marker = MARKER.search(lines[node.lineno - 1])
            found[name].append((rel, node.lineno, marker.group(1) if marker else None))

        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Attribute) and node.attr != "__init__" and (
                    _is_module(node.value) or _is_trt_value(node.value)):
                add(node.attr, node)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("hasattr", "getattr") and len(node.args) >= 2
                  and _is_module(node.args[0]) and isinstance(node.args[1], ast.Constant)):
                add(node.args[1].value, node)
            elif isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Attribute) and _is_module(b.value) for b in node.bases):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                        add(item.name, item)
    return found


def download(wheel_dir: Path) -> dict[str, Path]:
    wheels = {}
    for version, requirement in WHEELS.items():
        name, exact = requirement.split("==")
        pattern = f"{name.replace('-', '_')}-{exact}-*.whl"
        if not list(wheel_dir.glob(pattern)):
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheel_dir),
                            requirement], check=True)
        wheels[version] = next(wheel_dir.glob(pattern))
    return wheels


def wheel_names(wheel: Path) -> tuple[set[str], set[str]]:
    """(exact strings, suffixes of identifier strings) of the wheel's extension module and __init__.py."""
    exact = set()
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if re.search(r"tensorrt_bindings/tensorrt[^/]*\.(so|pyd)$", member):
                exact |= {raw.decode("latin-1") for raw in archive.read(member).split(b"\0") if raw}
            elif member.endswith("tensorrt_bindings/__init__.py"):
                for node in ast.walk(ast.parse(archive.read(member))):
                    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                        exact.add(node.name)
                    elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                        exact.add(node.id)
    identifiers = [s for s in exact if re.fullmatch(r"\w{1,80}", s)]
    suffixes = {s[i:] for s in identifiers for i in range(1, len(s))}
    return exact, suffixes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel-dir", type=Path, help="Where the wheels are (or go); default a temp dir.")
    args = parser.parse_args()
    names = collect_names(SOURCES)
    with tempfile.TemporaryDirectory() as temporary:
        wheel_dir = args.wheel_dir or Path(temporary)
        wheel_dir.mkdir(parents=True, exist_ok=True)
        tables = {version: wheel_names(path) for version, path in download(wheel_dir).items()}
    missing, weak = [], []
    print(f"{'name':36} {'10.3':8} {'11.4':8} used at")
    for name in sorted(names):
        sites = names[name]
        cells = []
        for version, (exact, suffixes) in tables.items():
            checked = any(only in (None, version.split(".")[0]) for _, _, only in sites)
            state = "exact" if name in exact else "suffix" if name in suffixes else "MISSING"
            if not checked:
                state = "n/a"
            elif state == "MISSING":
                missing.append((name, version))
            elif state == "suffix":
                weak.append((name, version))
            cells.append(state)
        where = ", ".join(f"{f}:{line}" for f, line, _ in sites[:3]) + (" ..." if len(sites) > 3 else "")
        print(f"{name:36} {cells[0]:8} {cells[1]:8} {where}")
    print(f"\n{len(names)} names; {len(weak)} only as suffixes of longer strings (present, weaker evidence)")
    for name, version in missing:
        print(f"MISSING in TensorRT {version}: {name} ({', '.join(f'{f}:{n}' for f, n, _ in names[name])})")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
