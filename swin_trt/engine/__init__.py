"""TensorRT engines: targets, the strongly typed build and its manifest. TensorRT is imported lazily."""

from .build import BuildResult, build_engine
from .targets import TARGETS, TargetSettings, resolve_target

__all__ = ["BuildResult", "TARGETS", "TargetSettings", "build_engine", "resolve_target"]
