"""Which platform this is, where its TensorRT comes from, and how to install TensorRT there.

TensorRT's Python bindings reach a machine in one of two ways, and which one is right depends on the platform:

* **the system package** ``python3-libnvinfer`` (apt), installed as ``/usr/lib/python3.X/dist-packages/
  tensorrt/`` with ``tensorrt.so`` inside the package. This is the only way on JetPack 6, which ships TensorRT
  10.3 for its Python 3.10; a venv sees it only when made with ``--system-site-packages``.
* **NVIDIA's PyPI wheels**: ``tensorrt`` is a metapackage pulling ``tensorrt_cuNN`` (the ``tensorrt`` package,
  which re-exports ``tensorrt_bindings``), ``tensorrt_cuNN_bindings`` (``tensorrt_bindings/tensorrt.so``) and
  ``tensorrt_cuNN_libs`` (``tensorrt_libs/``). x86_64 wheels serve servers; the aarch64 wheels (from 10.5 on)
  are Linux SBSA builds, for Grace and for JetPack 7.2.2+ (TensorRT 11.4.1+), never for JetPack 6.

The functions here are pure over paths, file text and the interpreter's facts (so the tests run them on fake
layouts); :func:`origin_here`, :func:`platform_here` and :func:`missing_tensorrt_hint` read the real machine.
Nothing here imports tensorrt.
"""

from __future__ import annotations

import platform as _platform
import re
import site
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

TEGRA_RELEASE = Path("/etc/nv_tegra_release")
SYSTEM_DIST_PACKAGES = re.compile(r"(^|/)usr/lib/python3(\.\d+)?/dist-packages$")  # apt's Python packages
SYSTEM_PIP_DIST_PACKAGES = re.compile(r"(^|/)usr/local/lib/python3(\.\d+)?/dist-packages$")  # sudo pip's
PYPI_DISTRIBUTION = re.compile(r"^tensorrt[-_]cu\d+([-_](bindings|libs))?-[^/]*\.dist-info$", re.IGNORECASE)
SYSTEM_PACKAGE = "python3-libnvinfer"

# Platforms: each one's TensorRT and its install line (the README's install section says the same).
PLATFORM_NAMES = {
    "server": "x86_64 server",
    "jetpack6": "JetPack 6 (TensorRT 10.3)",
    "sbsa": "JetPack 7.2.2+ or Grace (aarch64 SBSA, TensorRT 11.4.1+ on JetPack)",
    "jetpack5": "JetPack 5 or older",
}
INSTALL_LINES = {
    "server": "pip install 'swin-trt[trt]' (NVIDIA's wheels: pip install tensorrt; needs the NVIDIA driver)",
    "jetpack6": (f"sudo apt install {SYSTEM_PACKAGE} python3-venv, then python3 -m venv --system-site-packages "
                 f".venv and pip install 'swin-trt[jetson]' (polygraphy and pycuda; TensorRT stays the system's: "
                 f"PyPI's aarch64 tensorrt wheels are SBSA builds for JetPack 7.2.2+ and Grace, not JetPack 6)"),
    "sbsa": ("pip install 'swin-trt[jetpack7]' (PyPI's SBSA tensorrt >= 11.4.1; on Grace 'swin-trt[trt]' "
             "does too)"),
    "jetpack5": "JetPack 5 ships TensorRT 8.5/8.6, too old for swin-trt (TensorRT >= 10): flash JetPack 6",
}
INSTALL_ALL = "; ".join(f"{PLATFORM_NAMES[key]}: {INSTALL_LINES[key]}"
                        for key in ("server", "jetpack6", "sbsa"))


# --- JetPack --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class L4tRelease:
    """``/etc/nv_tegra_release``: ``# R36 (release), REVISION: 4.3, GCID: ..., BOARD: ..., ...``."""

    major: int
    revision: str  # "4.3"

    @property
    def version(self) -> str:
        return f"{self.major}.{self.revision}"

    @property
    def jetpack(self) -> str:
        """The JetPack of this L4T major release (32: 4, 34/35: 5, 36: 6, 38: 7)."""
        if self.major >= 38:
            return "JetPack 7" if self.major == 38 else f"JetPack 7 or later (L4T R{self.major})"
        return {36: "JetPack 6", 35: "JetPack 5", 34: "JetPack 5"}.get(self.major, "JetPack 4 or older")

    def describe(self) -> str:
        return f"{self.jetpack} (L4T R{self.version})"


def parse_tegra_release(text: str) -> L4tRelease | None:
    """The L4T release in ``/etc/nv_tegra_release``'s text, or None where it is not that file's format."""
    match = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)", text)
    if not match:
        return None
    return L4tRelease(int(match.group(1)), match.group(2).rstrip("."))


def read_tegra_release(path: Path = TEGRA_RELEASE) -> L4tRelease | None:
    try:
        return parse_tegra_release(Path(path).read_text(errors="replace"))
    except OSError:  # not a Jetson (or a container that does not mount the file)
        return None


def platform_of(machine: str, l4t: L4tRelease | None) -> str:
    """``server``, ``jetpack6``, ``sbsa`` (JetPack 7.2.2+, Grace, other aarch64 servers) or ``jetpack5``."""
    if l4t is not None:
        if l4t.major >= 38:
            return "sbsa"
        return "jetpack6" if l4t.major == 36 else "jetpack5"
    return "sbsa" if machine.lower() in ("aarch64", "arm64") else "server"


def platform_here() -> tuple[str, L4tRelease | None]:
    """This machine's platform key and its L4T release (None off a Jetson)."""
    l4t = read_tegra_release()
    return platform_of(_platform.machine(), l4t), l4t


def install_line(platform: str) -> str:
    return f"{PLATFORM_NAMES[platform]}: {INSTALL_LINES[platform]}"


# --- where the imported tensorrt comes from --------------------------------------------------------------

@dataclass(frozen=True)
class TensorRTOrigin:
    """Where a ``tensorrt`` module was found: its file, the folder holding it, how it was installed there
    (``system-package``, ``pypi-wheel`` or ``other``) and which environment that folder belongs to."""

    version: str | None
    module_file: str
    resolved_file: str  # module_file with links followed (a venv may link the system's bindings in)
    site_dir: str
    installed_by: str  # "system-package" | "pypi-wheel" | "other"
    location: str  # "system dist-packages" | "venv" | "user site" | "system pip" | "interpreter" | "elsewhere"
    distributions: tuple[str, ...]  # the TensorRT dist-info folders beside it
    platform: str | None = None
    jetpack: str | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "distributions": list(self.distributions), "description": self.describe()}

    def describe(self, machine: bool = True) -> str:
        """One line: version, module file, how installed, in which environment; ``machine``: and the JetPack
        (or platform) of this machine."""
        how = {"system-package": f"the system's {SYSTEM_PACKAGE} (apt)",
               "pypi-wheel": "a PyPI wheel (" + (", ".join(self.distributions) or "tensorrt_bindings") + ")",
               "other": "neither the system package nor a PyPI wheel (a copy, or a wheel from NVIDIA's tar "
                        "package)"}[self.installed_by]
        where = {"system dist-packages": "the system's dist-packages", "venv": "this venv",
                 "user site": "the user's site-packages (pip --user)",
                 "system pip": "the system Python's pip folder", "interpreter": "this interpreter's site-packages",
                 "elsewhere": "a folder on the module path"}[self.location]
        linked = f" -> {self.resolved_file}" if self.resolved_file != self.module_file else ""
        version = f" {self.version}" if self.version else ""
        text = f"TensorRT{version} from {self.module_file}{linked}: {how}, in {where}"
        if machine and self.jetpack:
            text += f"; {self.jetpack}"
        elif machine and self.platform:
            text += f"; {PLATFORM_NAMES[self.platform]}"
        return text

    def problem(self) -> str | None:
        """What is wrong with this TensorRT on its platform, with the fix; None where it fits."""
        if self.platform == "jetpack6" and self.installed_by == "pypi-wheel":
            names = " ".join(d.split("-")[0] for d in self.distributions) or "tensorrt"
            return (f"this TensorRT is a PyPI wheel, but PyPI's aarch64 tensorrt wheels are SBSA builds for "
                    f"JetPack 7.2.2+ and Grace, not JetPack 6: pip uninstall tensorrt {names} and use the "
                    f"system's TensorRT 10.3 ({install_line('jetpack6')})")
        if self.platform == "sbsa" and self.jetpack and self.version \
                and _version(self.version) < (11, 4, 1):
            return (f"TensorRT {self.version} does not support {self.jetpack}: JetPack 7.2.2+ needs TensorRT "
                    f"11.4.1 or later ({install_line('sbsa')})")
        return None


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in str(text).split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def _under(path: Path, folder: str | Path | None) -> bool:
    if not folder:
        return False
    try:
        path.relative_to(Path(folder))
    except ValueError:
        return False
    return True


def tensorrt_origin(module_file: str | Path, version: str | None = None, *, prefix: str | Path | None = None,
                    base_prefix: str | Path | None = None, user_site: str | Path | None = None,
                    platform: str | None = None, l4t: L4tRelease | None = None) -> TensorRTOrigin:
    """Where the ``tensorrt`` module at ``module_file`` (its ``__init__.py``, or ``tensorrt.so`` for a bare
    module) comes from, read from the folder that holds it. ``prefix``/``base_prefix`` are ``sys.prefix`` and
    ``sys.base_prefix`` (they differ in a venv), ``user_site`` is ``site.USER_SITE``."""
    module_file = Path(module_file)
    resolved = module_file.resolve()
    package = resolved.parent if resolved.stem == "__init__" else None
    site_dir = (package.parent if package is not None else resolved.parent)
    listed_dir = module_file.parent.parent if module_file.stem == "__init__" else module_file.parent
    names = sorted({p.name for folder in {site_dir, listed_dir} if folder.is_dir()
                    for p in folder.iterdir() if p.name.lower().startswith("tensorrt")})
    distributions = tuple(n[:-len(".dist-info")] for n in names if n.endswith(".dist-info"))
    pypi = any(PYPI_DISTRIBUTION.match(n) for n in names) or (site_dir / "tensorrt_bindings").is_dir()
    if pypi:
        installed_by = "pypi-wheel"
        distributions = tuple(d for d in distributions if PYPI_DISTRIBUTION.match(d + ".dist-info"))
    elif SYSTEM_DIST_PACKAGES.search(site_dir.as_posix()):
        installed_by = "system-package"
    else:
        installed_by = "other"
    # the environment is where the module is found (a venv may hold a link to the system's bindings)
    found_in = listed_dir
    if SYSTEM_DIST_PACKAGES.search(found_in.as_posix()):
        location = "system dist-packages"
    elif prefix and base_prefix and Path(prefix) != Path(base_prefix) and _under(found_in, prefix):
        location = "venv"
    elif _under(found_in, user_site):
        location = "user site"
    elif SYSTEM_PIP_DIST_PACKAGES.search(found_in.as_posix()):
        location = "system pip"
    elif _under(found_in, base_prefix):
        location = "interpreter"
    else:
        location = "elsewhere"
    return TensorRTOrigin(version, str(module_file), str(resolved), str(site_dir), installed_by, location,
                          distributions, platform, l4t.describe() if l4t else None)


def origin_here(trt) -> TensorRTOrigin:
    """Where the imported ``tensorrt`` module ``trt`` comes from, on this machine."""
    platform, l4t = platform_here()
    return tensorrt_origin(getattr(trt, "__file__", None) or "tensorrt", getattr(trt, "__version__", None),
                           prefix=sys.prefix, base_prefix=sys.base_prefix,
                           user_site=getattr(site, "USER_SITE", None), platform=platform, l4t=l4t)


# --- where TensorRT is when it cannot be imported -------------------------------------------------------

def _find_module_file(name: str) -> str | None:
    """Where ``import name`` would load from, without importing it (None where it is not on the path)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.origin not in (None, "namespace") else None


def system_site_packages_visible(prefix: str | Path, base_prefix: str | Path) -> bool:
    """Whether this interpreter sees the system's site-packages: outside a venv always; in a venv where its
    ``pyvenv.cfg`` says ``include-system-site-packages = true``."""
    if Path(prefix) == Path(base_prefix):
        return True
    try:
        text = (Path(prefix) / "pyvenv.cfg").read_text(errors="replace")
    except OSError:
        return False
    match = re.search(r"^\s*include-system-site-packages\s*=\s*(\S+)", text, re.MULTILINE)
    return bool(match) and match.group(1).lower() == "true"


def system_tensorrt_packages(root: str | Path = "/") -> list[Path]:
    """The system's TensorRT bindings under ``root``: ``usr/lib/python3*/dist-packages/tensorrt``."""
    return sorted(p.parent for p in Path(root).glob("usr/lib/python3*/dist-packages/tensorrt/__init__.py"))


def missing_tensorrt_hint(*, root: str | Path = "/", executable: str | None = None,
                          python: tuple[int, int] | None = None, prefix: str | Path | None = None,
                          base_prefix: str | Path | None = None, platform: str | None = None,
                          l4t: L4tRelease | None = None, module_file: str | Path | None = None) -> str:
    """Where TensorRT was looked for, a ``tensorrt`` that is there but failed to load (``module_file``: where
    it is, and what is wrong with it on this platform; ``""`` for none), system bindings this Python cannot
    see (and why), and the install line of this platform and of the others. Every argument defaults to this
    machine's."""
    if module_file is None:
        module_file = _find_module_file("tensorrt")
    executable = executable or sys.executable
    python = python or sys.version_info[:2]
    prefix, base_prefix = prefix or sys.prefix, base_prefix or sys.base_prefix
    if platform is None:
        platform, l4t = platform_here()
    in_venv = Path(prefix) != Path(base_prefix)
    sees_system = system_site_packages_visible(prefix, base_prefix)
    this = f"{executable}, Python {python[0]}.{python[1]}"
    if in_venv:
        this += ", a venv " + ("with" if sees_system else "without") + " the system's site-packages"
    packages = system_tensorrt_packages(root)
    parts = [f"looked on this Python's module path ({this}) and for the system's bindings in "
             f"/usr/lib/python3*/dist-packages/tensorrt ({'found' if packages else 'none'})"]
    if module_file:
        origin = tensorrt_origin(module_file, prefix=prefix, base_prefix=base_prefix,
                                 user_site=getattr(site, "USER_SITE", None), platform=platform, l4t=l4t)
        parts.append("Found " + origin.describe(machine=False) + ", which failed to load"
                     + (f": {origin.problem()}" if origin.problem() else ""))
        packages = [p for p in packages if Path(p).resolve() != Path(origin.resolved_file).parent]
    for package in packages:
        made_for = re.search(r"python3\.(\d+)", package.parent.parent.name)
        if made_for and int(made_for.group(1)) != python[1]:
            system_python = f"python3.{made_for.group(1)}"
            parts.append(f"{package} holds the system's TensorRT for Python 3.{made_for.group(1)}, not this "
                         f"Python {python[0]}.{python[1]}: make the venv with that Python ({system_python} -m venv "
                         f"--system-site-packages .venv)")
        elif in_venv and not sees_system:
            parts.append(f"{package} holds the system's TensorRT, which this venv does not see: recreate it with "
                         f"python3 -m venv --system-site-packages {prefix}")
        else:
            parts.append(f"{package} holds the system's TensorRT but did not import: reinstall {SYSTEM_PACKAGE}")
    here = l4t.describe() if l4t else PLATFORM_NAMES[platform]
    parts.append(f"This machine ({here}): {INSTALL_LINES[platform]}")
    others = [install_line(key) for key in ("server", "jetpack6", "sbsa") if key != platform]
    parts.append("Elsewhere: " + "; ".join(others))
    return ". ".join(parts)
