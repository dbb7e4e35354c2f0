"""What ``swin-trt compile`` is asked to do: its options, checked, and TOML recipes that set them."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..data.model_input import PreprocessOptions
from ..errors import UserError
from ..precision.defaults import COMPILE_PRECISIONS, DEFAULT_CALIB_IMAGES
from ..precision.methods import DEFAULT_METHOD
from ..surgery.variant import DEFAULT_FUSE_ATTENTION, DEFAULT_WINDOW_OPS, WINDOW_OPS


@dataclass
class CompileOptions:
    outdir: Path
    arch: str | None = None  # export this named config ...
    onnx: Path | None = None  # ... or start from an ONNX file the user exported
    precision: str = "fp16"
    checkpoint: Path | None = None
    img_size: tuple[int, int] | None = None
    convention: str | None = None
    exporter: str = "torchscript"
    batch: int = 1
    dynamic_batch: int | None = None
    calib_data: Path | None = None
    calib_method: str = DEFAULT_METHOD  # as `swin-trt calibrate`: entropy clips GELU outputs of trained Swins
    calib_num: int = DEFAULT_CALIB_IMAGES
    val_data: Path | None = None
    val_masks: Path | None = None  # label masks of the validation images (segmentation: true mIoU)
    val_annotations: Path | None = None  # COCO boxes of the validation images (detection: true mAP)
    val_limit: int | None = None
    plugins: Path | None = None
    target: str = "auto"
    workspace_gib: float | None = None
    img_size_range: tuple | None = None  # ((h, w) min, opt, max) for a graph with dynamic height and width
    build: bool = True
    force: bool = False
    gates: dict = field(default_factory=dict)  # min_agreement, min_cosine, max_acc_drop, max_miou_drop
    preprocess: PreprocessOptions = field(default_factory=PreprocessOptions)
    fuse_attention: bool = DEFAULT_FUSE_ATTENTION  # the plugin variant the CPU artifacts are made with
    window_ops: str = DEFAULT_WINDOW_OPS
    compare: bool = True  # with TensorRT and a GPU: build every plugin variant, keep the fastest engine

    @property
    def needs_calibration(self) -> bool:
        return self.precision in ("int8", "best")

    def check(self) -> None:
        if (self.arch is None) == (self.onnx is None):
            raise UserError("compile needs either `arch` (export a named config) or `onnx` (start from your "
                            "own export), not both" if self.arch else
                            "compile needs `arch` (a named config, see `swin-trt archs`) or `onnx` (your export)")
        if self.onnx is not None and (self.checkpoint is not None or self.convention is not None):
            raise UserError("`checkpoint` and `convention` are export options: with `onnx` the graph is already "
                            "exported; drop them")
        if self.precision not in COMPILE_PRECISIONS:
            raise UserError(f"unknown precision {self.precision!r}: choose one of {', '.join(COMPILE_PRECISIONS)}")
        if self.window_ops not in WINDOW_OPS:
            raise UserError(f"`window_ops` {self.window_ops!r}: choose one of {', '.join(WINDOW_OPS)}")
        if self.needs_calibration and self.calib_data is None:
            raise UserError(f"`precision` {self.precision} needs `calib_data` (a folder of images, a video or a "
                            f"list of paths) to calibrate INT8 ranges on")
        for name in ("onnx", "calib_data", "val_data", "val_masks", "val_annotations", "checkpoint"):
            value = getattr(self, name)
            if value is not None and not Path(value).exists():
                raise UserError(f"`{name}` {str(value)!r} does not exist")


def load_recipe(path: Path) -> dict:
    """Options from a TOML recipe (keys as the long flags, with - or _)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"recipe {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"recipe {str(path)!r} is not valid TOML: {exc}") from None
    return {key.replace("-", "_"): value for key, value in data.items()}
