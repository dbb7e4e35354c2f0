"""Install lines per platform: the extras' requirements, where an imported TensorRT comes from, the JetPack.

The extras are read from pyproject.toml, from the metadata setuptools builds from it (what pip sees), and from
the installed swin-trt's metadata where that is current. The
TensorRT-origin functions run on real folder layouts written under tmp_path: the system package's
(``usr/lib/python3.10/dist-packages/tensorrt/tensorrt.so``, apt's python3-libnvinfer) and NVIDIA's PyPI wheels'
(``tensorrt/`` re-exporting ``tensorrt_bindings/``, ``tensorrt_cuNN*.dist-info``), as read from the wheels.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from swin_trt.tensorrt_origin import (INSTALL_LINES, L4tRelease, missing_tensorrt_hint, parse_tegra_release,
                                      platform_of, system_site_packages_visible, tensorrt_origin)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
TENSORRT_DIST = re.compile(r"^tensorrt(-cu\d+)?(-bindings|-libs)?$")  # tensorrt, tensorrt-cu12, ...-bindings ...
JETPACK6_EXTRAS = ("jetson",)  # the README's JetPack 6 line installs these over the system's TensorRT
SERVER_EXTRAS = ("trt",)


def _expand(extras: dict[str, list[str]], name: str, seen=()) -> list[Requirement]:
    """Every requirement ``swin-trt[name]`` brings, self-references (``swin-trt[a,b]``) followed."""
    found = []
    for text in extras[name]:
        requirement = Requirement(text)
        if canonicalize_name(requirement.name) == "swin-trt":
            for inner in sorted(requirement.extras - set(seen)):
                found += _expand(extras, inner, (*seen, name))
        else:
            found.append(requirement)
    return found


def _pyproject_extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _built_extras() -> dict[str, list[str]]:
    """The extras of swin-trt's metadata as its build backend writes it for a wheel (setuptools, from this
    checkout's pyproject.toml, in a scratch folder), read back through importlib.metadata."""
    import shutil
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, Path(scratch) / name)
        (Path(scratch) / "out").mkdir()
        code = ("import setuptools.build_meta as b, sys; "
                "print(b.prepare_metadata_for_build_wheel(sys.argv[1]))")
        result = subprocess.run([sys.executable, "-c", code, str(Path(scratch) / "out")], cwd=scratch,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        dist_info = Path(scratch) / "out" / result.stdout.strip().splitlines()[-1]
        return _extras_of(importlib.metadata.PathDistribution(dist_info))


def _installed_extras() -> dict[str, list[str]]:
    """The installed swin-trt's extras, as pip sees them (``Requires-Dist: x; extra == "name"``)."""
    return _extras_of(importlib.metadata.distribution("swin-trt"))


def _extras_of(distribution) -> dict[str, list[str]]:
    extras = {name: [] for name in distribution.metadata.get_all("Provides-Extra") or []}
    for text in distribution.requires or []:
        requirement = Requirement(text)
        for name in extras:
            if requirement.marker is not None and requirement.marker.evaluate({"extra": name}) \
                    and not requirement.marker.evaluate({"extra": "__none__"}):
                requirement_text = str(Requirement(text.split(";")[0]))
                extras[name].append(requirement_text)
    return extras


def _metadata_sources() -> list:
    try:
        current = set(_installed_extras()) >= set(_pyproject_extras())
    except importlib.metadata.PackageNotFoundError:
        current = False
    return [pytest.param(_pyproject_extras, id="pyproject"), pytest.param(_built_extras, id="built-metadata"),
            pytest.param(_installed_extras, id="installed", marks=pytest.mark.skipif(
                not current, reason="the installed swin-trt's metadata predates pyproject.toml's extras: "
                                    "pip install -e ."))]


def _tensorrt_requirements(requirements) -> list[str]:
    return [str(r) for r in requirements if TENSORRT_DIST.match(canonicalize_name(r.name))]


@pytest.mark.parametrize("read_extras", _metadata_sources())
def test_no_jetpack6_extra_pulls_a_pypi_tensorrt_and_the_server_extra_does(read_extras):
    extras = read_extras()
    for name in JETPACK6_EXTRAS:
        requirements = _expand(extras, name)
        assert _tensorrt_requirements(requirements) == [], f"[{name}] would replace JetPack 6's TensorRT"
        assert {"polygraphy", "pycuda"} <= {canonicalize_name(r.name) for r in requirements}
    for name in SERVER_EXTRAS:
        assert _tensorrt_requirements(_expand(extras, name)), f"[{name}] must bring TensorRT on a server"
    # JetPack 7.2.2+: TensorRT 11.4.1 is the first 11.x for any JetPack, so its extra must refuse 11.0 to 11.4.0
    jetpack7 = [r for r in _expand(extras, "jetpack7") if canonicalize_name(r.name) == "tensorrt"]
    assert jetpack7 and all(not r.specifier.contains("11.4.0.106") and r.specifier.contains("11.4.1")
                            for r in jetpack7)
    # nor does the test extra, so `[test]` can go into a JetPack 6 venv beside `[jetson]`
    assert _tensorrt_requirements(_expand(extras, "test")) == []


def test_readme_gives_each_jetpack_its_install_line():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Install per platform"):]
    section = section[:section.index("\n## ")]
    lines = {}  # the bold title before each bash block -> the block
    for block in re.finditer(r"```bash\n(.*?)```", section, re.DOTALL):
        lines[re.findall(r"\*\*([^*]+)\*\*", section[:block.start()])[-1]] = block.group(1)
    jetpack6 = next(body for title, body in lines.items() if "JetPack 6" in title)
    assert "--system-site-packages" in jetpack6 and "python3-libnvinfer" in jetpack6
    assert re.search(r"\[jetson\]", jetpack6) and "[trt]" not in jetpack6 and "tensorrt" not in jetpack6
    jetpack7 = next(body for title, body in lines.items() if "JetPack 7.2.2" in title)
    assert "[jetpack7]" in jetpack7
    server = next(body for title, body in lines.items() if "x86_64 server" in title)
    assert "[trt]" in server
    # the library's install lines (the error without TensorRT) name the same extras
    assert "[jetson]" in INSTALL_LINES["jetpack6"] and "--system-site-packages" in INSTALL_LINES["jetpack6"]
    assert "[trt]" in INSTALL_LINES["server"] and "[jetpack7]" in INSTALL_LINES["sbsa"]


# --- JetPack from /etc/nv_tegra_release ---------------------------------------------------------------------

@pytest.mark.parametrize("text, version, jetpack, platform", [
    ("# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, DATE: Wed Jan  8 01:49:37 "
     "UTC 2025\n# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n", "36.4.3", "JetPack 6", "jetpack6"),
    ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 "
     "UTC 2023", "35.4.1", "JetPack 5", "jetpack5"),
    ("# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64, DATE: Fri Aug 22 2025",
     "38.2.0", "JetPack 7", "sbsa"),
])
def test_jetpack_from_the_tegra_release_file(tmp_path, text, version, jetpack, platform):
    from swin_trt.tensorrt_origin import read_tegra_release

    (tmp_path / "nv_tegra_release").write_text(text)
    release = read_tegra_release(tmp_path / "nv_tegra_release")
    assert release == parse_tegra_release(text)
    assert (release.version, release.jetpack) == (version, jetpack)
    assert release.describe() == f"{jetpack} (L4T R{version})"
    assert platform_of("aarch64", release) == platform


def test_platform_without_a_tegra_release():
    assert parse_tegra_release("Ubuntu 22.04.4 LTS") is None
    assert platform_of("x86_64", None) == "server"
    assert platform_of("aarch64", None) == "sbsa"  # Grace, or a JetPack 7 container without the file


# --- where an imported tensorrt comes from (real folder layouts) ---------------------------------------------

def _touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _system_package(root: Path, python="3.10", version="10.3.0") -> Path:
    """apt's python3-libnvinfer: the bindings inside the package folder, a plain dist-info beside it."""
    site_dir = root / f"usr/lib/python{python}/dist-packages"
    _touch(site_dir / "tensorrt/tensorrt.so")
    _touch(site_dir / f"tensorrt-{version}.dist-info/METADATA", f"Name: tensorrt\nVersion: {version}\n")
    return _touch(site_dir / "tensorrt/__init__.py", "from .tensorrt import *\n")


def _pypi_wheels(site_dir: Path, cuda="cu12", version="10.13.3.9") -> Path:
    """NVIDIA's wheels: tensorrt_cuNN's ``tensorrt`` re-exports tensorrt_cuNN_bindings' ``tensorrt_bindings``."""
    _touch(site_dir / "tensorrt_bindings/tensorrt.so")
    _touch(site_dir / "tensorrt_libs/libnvinfer.so.10")
    for name in (f"tensorrt_{cuda}", f"tensorrt_{cuda}_bindings", f"tensorrt_{cuda}_libs", "tensorrt"):
        _touch(site_dir / f"{name}-{version}.dist-info/METADATA")
    return _touch(site_dir / "tensorrt/__init__.py", "from tensorrt_bindings import *\n")


def test_origin_of_the_system_package_on_jetpack6(tmp_path):
    module = _system_package(tmp_path)
    l4t = L4tRelease(36, "4.3")
    origin = tensorrt_origin(module, "10.3.0.30", prefix="/usr", base_prefix="/usr", platform="jetpack6", l4t=l4t)
    assert (origin.installed_by, origin.location) == ("system-package", "system dist-packages")
    assert origin.distributions == ("tensorrt-10.3.0",)
    assert origin.describe() == (f"TensorRT 10.3.0.30 from {module}: the system's python3-libnvinfer (apt), in "
                                 f"the system's dist-packages; JetPack 6 (L4T R36.4.3)")
    assert origin.problem() is None
    assert origin.to_dict()["description"] == origin.describe()


def test_origin_of_a_link_to_the_system_package_inside_a_venv(tmp_path):
    system = _system_package(tmp_path).parent
    venv_site = tmp_path / "venv/lib/python3.10/site-packages"
    venv_site.mkdir(parents=True)
    (venv_site / "tensorrt").symlink_to(system, target_is_directory=True)
    origin = tensorrt_origin(venv_site / "tensorrt/__init__.py", "10.3.0.30", prefix=tmp_path / "venv",
                             base_prefix="/usr", platform="jetpack6", l4t=L4tRelease(36, "3.0"))
    assert (origin.installed_by, origin.location) == ("system-package", "venv")
    assert origin.resolved_file == str(system / "__init__.py")
    assert f"-> {system / '__init__.py'}" in origin.describe()
    assert origin.problem() is None


def test_origin_of_pypi_wheels_in_a_venv_and_why_they_do_not_belong_on_jetpack6(tmp_path):
    venv = tmp_path / "venv"
    module = _pypi_wheels(venv / "lib/python3.10/site-packages")
    on_server = tensorrt_origin(module, "10.13.3.9", prefix=venv, base_prefix="/usr", platform="server")
    assert (on_server.installed_by, on_server.location) == ("pypi-wheel", "venv")
    assert on_server.distributions == ("tensorrt_cu12-10.13.3.9", "tensorrt_cu12_bindings-10.13.3.9",
                                       "tensorrt_cu12_libs-10.13.3.9")
    assert "a PyPI wheel (tensorrt_cu12-10.13.3.9" in on_server.describe() and "this venv" in on_server.describe()
    assert on_server.problem() is None and "JetPack" not in on_server.describe()

    on_jetpack6 = tensorrt_origin(module, "10.13.3.9", prefix=venv, base_prefix="/usr", platform="jetpack6",
                                  l4t=L4tRelease(36, "4.3"))
    problem = on_jetpack6.problem()
    assert "SBSA builds for JetPack 7.2.2+ and Grace, not JetPack 6" in problem
    assert "pip uninstall tensorrt tensorrt_cu12 tensorrt_cu12_bindings tensorrt_cu12_libs" in problem
    assert "--system-site-packages" in problem and "[jetson]" in problem


def test_origin_on_jetpack7_needs_tensorrt_11_4_1(tmp_path):
    module = _pypi_wheels(tmp_path / "venv/lib/python3.12/site-packages", cuda="cu13", version="11.4.0.106")
    kwargs = dict(prefix=tmp_path / "venv", base_prefix="/usr", platform="sbsa", l4t=L4tRelease(38, "4.0"))
    assert "needs TensorRT 11.4.1" in tensorrt_origin(module, "11.4.0.106", **kwargs).problem()
    assert tensorrt_origin(module, "11.4.1.2", **kwargs).problem() is None
    assert tensorrt_origin(module, "11.4.0.106", prefix=tmp_path / "venv", base_prefix="/usr",
                           platform="sbsa").problem() is None  # Grace: no JetPack, any TensorRT >= 10


def test_origin_locations_outside_a_venv(tmp_path):
    user_site = tmp_path / "home/.local/lib/python3.10/site-packages"
    user = tensorrt_origin(_pypi_wheels(user_site), "10.13.3.9", prefix="/usr", base_prefix="/usr",
                           user_site=user_site)
    assert user.location == "user site"
    sudo_pip = tensorrt_origin(_pypi_wheels(tmp_path / "usr/local/lib/python3.10/dist-packages"), "10.13.3.9",
                               prefix="/usr", base_prefix="/usr")
    assert sudo_pip.location == "system pip" and sudo_pip.installed_by == "pypi-wheel"
    copied = tensorrt_origin(_touch(tmp_path / "opt/trt/python/tensorrt/__init__.py"), None, prefix="/usr",
                             base_prefix="/usr")
    assert (copied.installed_by, copied.location) == ("other", "elsewhere")
    assert copied.describe().startswith("TensorRT from ")


# --- without TensorRT: where it looked and what to do ---------------------------------------------------------

def test_venv_sees_the_system_site_packages_only_where_pyvenv_cfg_says_so(tmp_path):
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\n")
    assert not system_site_packages_visible(tmp_path, "/usr")
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = true\nversion = 3.10\n")
    assert system_site_packages_visible(tmp_path, "/usr")
    assert system_site_packages_visible("/usr", "/usr")  # no venv: the interpreter's own path


@pytest.mark.parametrize("python, system_site, expected", [
    ((3, 10), "false", "this venv does not see: recreate it with python3 -m venv --system-site-packages"),
    ((3, 12), "true", "for Python 3.10, not this Python 3.12: make the venv with that Python (python3.10 -m venv"),
])
def test_missing_tensorrt_on_jetpack6_names_the_system_bindings_the_venv_cannot_see(tmp_path, python,
                                                                                     system_site, expected):
    package = _system_package(tmp_path).parent
    venv = tmp_path / "venv"
    _touch(venv / "pyvenv.cfg", f"include-system-site-packages = {system_site}\n")
    hint = missing_tensorrt_hint(root=tmp_path, executable=str(venv / "bin/python"), python=python, prefix=venv,
                                 base_prefix="/usr", platform="jetpack6", l4t=L4tRelease(36, "4.3"),
                                 module_file="")  # nothing importable was found
    assert f"{package} holds the system's TensorRT" in hint and expected in hint
    assert "looked on this Python's module path" in hint
    assert "/usr/lib/python3*/dist-packages/tensorrt (found)" in hint
    assert "This machine (JetPack 6 (L4T R36.4.3)): sudo apt install python3-libnvinfer" in hint
    assert "Elsewhere: x86_64 server: pip install 'swin-trt[trt]'" in hint and "[jetpack7]" in hint


def test_missing_tensorrt_names_a_pypi_wheel_that_failed_to_load_on_jetpack6(tmp_path):
    venv = tmp_path / "venv"
    module = _pypi_wheels(venv / "lib/python3.10/site-packages")
    hint = missing_tensorrt_hint(root=tmp_path, executable="python", python=(3, 10), prefix=venv,
                                 base_prefix="/usr", platform="jetpack6", l4t=L4tRelease(36, "4.3"),
                                 module_file=module)
    assert f"Found TensorRT from {module}: a PyPI wheel" in hint and "in this venv, which failed to load" in hint
    assert "SBSA builds for JetPack 7.2.2+ and Grace, not JetPack 6" in hint


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_build_without_tensorrt_says_where_it_looked_and_each_platforms_line(tmp_path):
    """The real CLI on this machine (no TensorRT): exit 2, nothing written, where it looked, every platform."""
    import onnx
    from onnx import TensorProto, helper

    from swin_trt.cli.main import main

    node = helper.make_node("Relu", ["x"], ["y"], name="n0")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 8, 8))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, 3, 8, 8))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    out = tmp_path / "out"
    out.mkdir()
    result = CliRunner().invoke(main, ["build", str(tmp_path / "m.onnx"), "-o", str(out / "m.engine"),
                                       "--target", "auto"])
    assert result.exit_code == 2, result.output
    assert "TensorRT is not installed" in result.output and "looked on this Python's module path" in result.output
    assert sys.executable in result.output
    for line in INSTALL_LINES["server"], INSTALL_LINES["jetpack6"], INSTALL_LINES["sbsa"]:
        assert line in result.output
    assert list(out.iterdir()) == []
