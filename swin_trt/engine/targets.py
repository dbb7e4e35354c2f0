"""Build targets: what a TensorRT build should assume about the machine the engine runs on.

An engine runs only on the GPU model (and TensorRT version) it was built for unless hardware or version
compatibility is asked for, and both cost speed, so every target leaves them off by default. Jetson
boards share their memory with the CPU, hence the smaller workspace; TensorRT does not support hardware
compatibility on JetPack at all.

Which TensorRT each JetPack carries (TensorRT 11.4.1 release notes): JetPack 6 on Orin stays on TensorRT
10.3; JetPack 7.2.2 and later run TensorRT 11.4.1 through its Linux SBSA build on AGX Orin and Thor (11.0
to 11.3 supported no JetPack). DLA (AGX Orin only: Orin Nano and Thor have none) works with TensorRT 10.0 to
10.7 and again from 11.4.1, with strongly typed networks; 11.0 to 11.4.0 have no DLA on Jetson.

``auto`` reads the machine: a Jetson GPU by its compute capability (8.7 Orin, 11.0 Thor, 7.2 Xavier), else
a Tegra board by its model name; anything else, including a machine without any GPU, is ``server``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import UserError
from ..environment import version_tuple

TARGETS = ("auto", "orin", "thor", "xavier", "server")
TEGRA_RELEASE = Path("/etc/nv_tegra_release")
DEVICE_TREE_MODEL = Path("/proc/device-tree/model")
# Jetson GPUs by compute capability (the integrated GPU reports these on every board of a family). Thor is
# sm_110 from CUDA 13 on (CUDA 12.8/12.9 called it sm_101).
JETSON_BY_CAPABILITY = {"8.7": "orin", "11.0": "thor", "10.1": "thor", "7.2": "xavier"}
FALLBACK_TARGET = "server"  # no Jetson GPU and no Tegra board (also: no GPU at all)


@dataclass(frozen=True)
class TargetSettings:
    name: str
    workspace_gib: float
    builder_opt_level: int  # TensorRT's own default is 3; 4-5 search longer for faster kernels
    version_compatible: bool
    hardware_compat: bool
    jetson: bool
    dla: bool  # the board has DLA cores that --dla-core may pick (the build checks TensorRT sees them)
    tensorrt: tuple  # ((JetPack, TensorRT it carries), ...) for Jetson targets; () for servers
    note: str

    def to_dict(self) -> dict:
        return asdict(self)


_SETTINGS = {
    "server": TargetSettings("server", workspace_gib=8.0, builder_opt_level=3, version_compatible=False,
                             hardware_compat=False, jetson=False, dla=False, tensorrt=(),
                             note="discrete GPU, TensorRT >= 10 (10.x or 11.x); --hardware-compat (Ampere+) and "
                                  "--version-compatible are opt-in because they cost speed"),
    "orin": TargetSettings("orin", workspace_gib=2.0, builder_opt_level=3, version_compatible=False,
                           hardware_compat=False, jetson=True, dla=True,
                           tensorrt=(("JetPack 6", "TensorRT 10.3"),
                                     ("JetPack 7.2.2+", "TensorRT 11.4.1 (SBSA build)")),
                           note="Jetson Orin (sm_87); memory shared with the CPU. --dla-core N on AGX Orin "
                                "(strongly typed DLA, GPU fallback) with TensorRT 10.3 or 11.4.1+"),
    "thor": TargetSettings("thor", workspace_gib=4.0, builder_opt_level=3, version_compatible=False,
                           hardware_compat=False, jetson=True, dla=False,
                           tensorrt=(("JetPack 7.2.2+", "TensorRT 11.4.1 (SBSA build)"),),
                           note="Jetson Thor (sm_110, CUDA 13); memory shared with the CPU; no DLA"),
    "xavier": TargetSettings("xavier", workspace_gib=1.0, builder_opt_level=3, version_compatible=False,
                             hardware_compat=False, jetson=True, dla=False,
                             tensorrt=(("JetPack 5.1", "TensorRT 8.5"),),
                             note="Jetson Xavier (sm_72): its newest JetPack (5.1) ships TensorRT 8.5, which "
                                  "lacks strongly typed networks and IPluginV3; builds need TensorRT >= 10"),
}


def dla_unsupported(tensorrt_version: str) -> str | None:
    """Why this TensorRT cannot build for DLA on a Jetson, or None when it can (see the module docstring)."""
    version = version_tuple(tensorrt_version)
    if (10, 0) <= version[:2] <= (10, 7) or version[:3] >= (11, 4, 1):
        return None
    return (f"TensorRT {tensorrt_version} has no DLA on Jetson: DLA needs TensorRT 10.0-10.7 (JetPack 6 ships "
            f"10.3) or 11.4.1+ (JetPack 7.2.2+, SBSA build); drop `dla_core` to build for the GPU")


def target_for(is_tegra: bool, compute_capability: str | None, board_model: str | None = None) -> str:
    """Pick a target from what the machine reports (pure, so it is testable without a Jetson).

    The compute capability decides where it is known (8.7 Orin, 11.0 Thor, 7.2 Xavier, even in a container
    that hides /etc/nv_tegra_release); otherwise a Tegra machine is named by its board model, defaulting to
    Orin; anything else is the server fallback.
    """
    if compute_capability in JETSON_BY_CAPABILITY:
        return JETSON_BY_CAPABILITY[compute_capability]
    if not is_tegra:
        return FALLBACK_TARGET
    model = (board_model or "").lower()
    return next((name for name in ("thor", "xavier") if name in model), "orin")


def detect_target(compute_capability: str | None = None) -> str:
    """The target of this machine; ``compute_capability`` ("8.7") when the caller already knows it."""
    if compute_capability is None:
        from ..device import gpu_info

        info = gpu_info()
        compute_capability = info.compute_capability if info else None
    board_model = None
    if DEVICE_TREE_MODEL.is_file():
        board_model = DEVICE_TREE_MODEL.read_bytes().decode(errors="replace").strip("\0 \n")
    is_tegra = TEGRA_RELEASE.is_file() or "jetson" in (board_model or "").lower()
    return target_for(is_tegra, compute_capability, board_model)


def resolve_target(target: str = "auto", *, workspace_gib: float | None = None,
                   builder_opt_level: int | None = None, version_compatible: bool | None = None,
                   hardware_compat: bool | None = None, dla_core: int | None = None,
                   compute_capability: str | None = None) -> TargetSettings:
    """The target's settings with the user's overrides applied and checked (no TensorRT needed)."""
    if target not in TARGETS:
        raise UserError(f"unknown target {target!r}: choose one of {', '.join(TARGETS)}")
    if target == "auto":
        target = detect_target(compute_capability)
    settings = _SETTINGS[target]
    overrides = {key: value for key, value in dict(
        workspace_gib=workspace_gib, builder_opt_level=builder_opt_level,
        version_compatible=version_compatible, hardware_compat=hardware_compat).items() if value is not None}
    settings = replace(settings, **overrides)
    if settings.workspace_gib <= 0:
        raise UserError(f"`workspace_gib` {settings.workspace_gib} GiB must be > 0")
    if not 0 <= settings.builder_opt_level <= 5:
        raise UserError(f"`builder_opt_level` {settings.builder_opt_level} is out of range: 0 to 5")
    if settings.hardware_compat and settings.jetson:
        raise UserError(f"`hardware_compat` is not supported on Jetson (target {target}): TensorRT offers "
                        f"hardware compatibility only on Ampere+ discrete GPUs; drop `hardware_compat`")
    if dla_core is not None:
        if dla_core < 0:
            raise UserError(f"`dla_core` {dla_core} must be >= 0")
        if not settings.dla:
            raise UserError(f"`dla_core` needs a board with DLA cores (Jetson AGX Orin, target orin); the "
                            f"target is {target}: drop `dla_core` or pass `target` orin")
    return settings
