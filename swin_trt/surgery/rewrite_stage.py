"""The rewrite stage on files: read, rewrite, check, write atomically with the sidecar carried along."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from ..graph import load_onnx
from ..data.model_input import PreprocessOptions, carried_sidecar
from ..errors import UserError
from ..io import atomic_output, sha256_file, sidecar_path, write_json
from ..ops.schema import PluginAttributeError
from ..stage import Stage
from .rewrite import RewriteReport, rewrite
from .variant import DEFAULT_FUSE_ATTENTION, DEFAULT_FUSE_GATHERS, DEFAULT_WINDOW_OPS, PluginVariant


@dataclass(frozen=True)
class RewriteOptions:
    fuse_attention: bool = DEFAULT_FUSE_ATTENTION
    window_ops: str = DEFAULT_WINDOW_OPS
    strict: bool = False  # refuse a window op that was found but could not be replaced
    preprocess: PreprocessOptions | None = None  # sets the sidecar's preprocessing for a graph that has none
    fuse_gathers: bool = DEFAULT_FUSE_GATHERS  # partition + attention + reverse as one node (needs fuse_attention)

    @classmethod
    def of(cls, variant: PluginVariant, **others) -> RewriteOptions:
        return cls(fuse_attention=variant.fuse_attention, window_ops=variant.window_ops, **others)


class RewriteStage(Stage[RewriteReport]):
    """``source`` (an export) -> ``output`` with plugin nodes in place of the window ops, and its sidecar."""

    name = "rewrite"

    def __init__(self, source: str | Path, output: str | Path, options: RewriteOptions | None = None):
        super().__init__({"source": Path(source)}, [Path(output), sidecar_path(output)], options or RewriteOptions())
        self.source, self.output = Path(source), Path(output)

    def work(self) -> RewriteReport:
        options = self.options
        if self.output.resolve() == self.source.resolve():
            raise UserError("the output must differ from the input: nothing is overwritten in place")
        model = load_onnx(self.source)
        sidecar = carried_sidecar(self.source, options.preprocess, model)
        try:
            rewritten, report = rewrite(model, fuse_attention=options.fuse_attention, strict=options.strict,
                                        window_ops=options.window_ops, fuse_gathers=options.fuse_gathers)
        except PluginAttributeError as exc:
            raise UserError(f"{exc}: the graph cannot be expressed with the plugin ops") from None
        onnx.checker.check_model(rewritten)
        with atomic_output(self.output) as temporary:
            onnx.save_model(rewritten, str(temporary))
        sidecar.update(stage="rewrite", source=str(self.source), source_sha256=sha256_file(self.source),
                       onnx_sha256=sha256_file(self.output), rewrite=report.to_dict())
        write_json(sidecar_path(self.output), sidecar)
        return report

    def summary(self, report: RewriteReport) -> str:
        return ", ".join(f"{n} {op}" for op, n in sorted(report.counts().items())) or "no plugin node"


def rewrite_file(source: Path, output: Path, fuse_attention: bool = DEFAULT_FUSE_ATTENTION, strict: bool = False,
                 window_ops: str = DEFAULT_WINDOW_OPS, preprocess: PreprocessOptions | None = None,
                 fuse_gathers: bool = DEFAULT_FUSE_GATHERS) -> RewriteReport:
    """:class:`RewriteStage` as one call."""
    return RewriteStage(source, output, RewriteOptions(fuse_attention, window_ops, strict, preprocess,
                                                       fuse_gathers)).run()
