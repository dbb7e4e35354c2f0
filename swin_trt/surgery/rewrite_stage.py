"""The rewrite stage on files: read, rewrite, check, write atomically with the sidecar carried along."""

from __future__ import annotations

from pathlib import Path

import onnx

from ..graph import load_onnx
from ..data.model_input import PreprocessOptions, carried_sidecar
from ..errors import UserError
from ..io import atomic_output, sha256_file, sidecar_path, write_json
from ..ops.schema import PluginAttributeError
from .rewrite import RewriteReport, rewrite
from .variant import DEFAULT_FUSE_ATTENTION, DEFAULT_WINDOW_OPS


def rewrite_file(source: Path, output: Path, fuse_attention: bool = DEFAULT_FUSE_ATTENTION, strict: bool = False,
                 window_ops: str = DEFAULT_WINDOW_OPS, preprocess: PreprocessOptions | None = None) -> RewriteReport:
    """Rewrite ``source`` into ``output``; the sidecar passes on the preprocessing (``preprocess`` overrides it)."""
    model = load_onnx(source)
    sidecar = carried_sidecar(source, preprocess, model)
    try:
        rewritten, report = rewrite(model, fuse_attention=fuse_attention, strict=strict, window_ops=window_ops)
    except PluginAttributeError as exc:
        raise UserError(f"{exc}: the graph cannot be expressed with the plugin ops") from None
    onnx.checker.check_model(rewritten)
    with atomic_output(output) as temporary:
        onnx.save_model(rewritten, str(temporary))
    sidecar.update(stage="rewrite", source=str(source), source_sha256=sha256_file(source),
                   onnx_sha256=sha256_file(output), rewrite=report.to_dict())
    write_json(sidecar_path(output), sidecar)
    return report
