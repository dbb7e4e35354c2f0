"""TensorRT engines: targets, the strongly typed build (Polygraphy), its manifest, and the comparison of
plugin variants. TensorRT and Polygraphy are imported lazily."""

from .build import BuildOptions, BuildResult, BuildStage, build_engine
from .compare import VARIANTS, Variant, compare_variants, make_variants
from .targets import TARGETS, TargetSettings, resolve_target

__all__ = ["BuildOptions", "BuildResult", "BuildStage", "TARGETS", "TargetSettings", "VARIANTS", "Variant", "build_engine", "compare_variants",
           "make_variants", "resolve_target"]
