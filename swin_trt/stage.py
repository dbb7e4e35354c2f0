"""One Stage type: files in, files out, an options object, and a reuse key derived from the three.

Every step of the pipeline is a :class:`Stage` subclass named ``<Step>Stage``: :class:`~swin_trt.export.
ExportStage`, :class:`~swin_trt.surgery.rewrite_stage.RewriteStage`, :class:`~swin_trt.precision.
calibrate_stage.CalibrateStage`, :class:`~swin_trt.precision.quantize_stage.QuantizeStage`,
:class:`~swin_trt.engine.build.BuildStage` and :class:`~swin_trt.validate.run.ValidateStage`. The CLI's
commands, ``compile`` and ``build --compare`` construct the same objects; ``stage.run()`` does the work,
writes its outputs atomically and returns the step's result.

``stage.key()`` decides whether ``compile`` may reuse what an earlier run wrote. Nobody writes it by hand:

- every input, by content (:func:`fingerprint`): a file's sha256, a folder's files, or whatever the input's
  own ``fingerprint()`` says (a calibration source hashes the images it reads);
- every field of the options object the stage runs with: the *same* object, so an option added to it
  cannot be left out. A ``Path`` field enters by content too. A field declares another way in its metadata:
  ``field(metadata=FINGERPRINT(fn))`` (e.g. a folder of images, listed as the stage reads it) or
  ``field(metadata=NOT_IN_KEY)`` (how a run reports, never what it computes: progress bars, callbacks) or
  ``field(metadata=AS_INPUT)`` (a field the stage declares among its inputs: in the key once, by content);
- the environment facts the stage declares in :attr:`Stage.environment` (:data:`ENVIRONMENT`): swin-trt's
  version always; ONNX Runtime's where its arithmetic is the result; TensorRT, the GPU and the plugin
  library's content for an engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, ClassVar, Generic, Mapping, Sequence, TypeVar

from .io import content_fingerprint, sha256_file

R = TypeVar("R")

NOT_IN_KEY = {"key": False}
AS_INPUT = {"key": False}  # a field the stage also declares as an input: in the key once, by content


def FINGERPRINT(function: Callable[[Any], Any]) -> dict:  # noqa: N802 - reads as a field's declaration
    """Field metadata: the field enters the key as ``function(value)`` (``None`` stays ``None``)."""
    return {"fingerprint": function}


def _swin_trt_version() -> str:
    from . import __version__

    return __version__


def _onnxruntime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _torch_version() -> str:
    import torch

    return torch.__version__


def _tensorrt_environment() -> dict:
    from . import environment

    return environment.build_environment()


ENVIRONMENT: dict[str, Callable[[], Any]] = {
    "swin_trt": _swin_trt_version,
    "torch": _torch_version,  # its exporter writes the graph
    "onnxruntime": _onnxruntime_version,  # calibration ranges and CPU validation are its arithmetic
    "tensorrt": _tensorrt_environment,  # the TensorRT version and the GPU an engine is built on
}


def fingerprint(value: Any) -> Any:
    """``value``'s content as JSON: a file by sha256, a folder by its files, an object by its own
    ``fingerprint()``, sequences and mappings item by item; anything else (numbers, strings) as it is."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "fingerprint"):
        return value.fingerprint()
    if isinstance(value, Path):
        if value.is_dir():
            files = sorted(p for p in value.rglob("*") if p.is_file() and not p.name.startswith("."))
            return content_fingerprint((str(p.relative_to(value)), p) for p in files)
        return sha256_file(value) if value.is_file() else f"missing: {value}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return options_key(value)
    if isinstance(value, Mapping):
        return {str(k): fingerprint(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [fingerprint(v) for v in value]
        return sorted(items, key=json.dumps) if isinstance(value, (set, frozenset)) else items
    raise TypeError(f"no fingerprint for {type(value).__name__}: give it a fingerprint() method or declare the "
                    f"field's FINGERPRINT")


def options_key(options: Any) -> Any:
    """Every field of the options dataclass ``options`` as the key sees it (see the module's docstring)."""
    if options is None:
        return None
    if not dataclasses.is_dataclass(options):
        return fingerprint(options)
    key = {}
    for field in dataclasses.fields(options):
        if field.metadata.get("key", True) is False:
            continue
        value = getattr(options, field.name)
        custom = field.metadata.get("fingerprint")
        key[field.name] = custom(value) if custom is not None and value is not None else fingerprint(value)
    return key


def coerce_paths(options: Any, *names: str) -> None:
    """Turn the ``names`` fields of ``options`` given as strings into ``Path``s, so that they enter the key by
    content (call it from ``__post_init__``; works on frozen dataclasses too)."""
    for name in names:
        value = getattr(options, name)
        if isinstance(value, str):
            object.__setattr__(options, name, Path(value))


def key_hash(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


class Stage(Generic[R]):
    """One step: ``inputs`` (role -> file, folder or fingerprinted source), ``outputs`` (every file it writes)
    and ``options``. Subclasses set :attr:`name`, :attr:`environment` and implement :meth:`work`."""

    name: ClassVar[str]
    environment: ClassVar[tuple[str, ...]] = ()  # ENVIRONMENT facts besides swin-trt's version
    skipped_note: ClassVar[str] = ""  # what a table says where the stage was skipped (default: the reason)

    def __init__(self, inputs: Mapping[str, Any], outputs: Sequence[Path], options: Any):
        self.inputs = dict(inputs)
        self.outputs = [Path(p) for p in outputs]
        self.options = options
        self.skip_reason: str | None = None  # set by whoever runs it: why not to run it this time

    def work(self) -> R:
        raise NotImplementedError

    def run(self) -> R:
        """Do the work. Every check that can fail on user input runs before anything is written, and each output
        is written atomically, so a failed run leaves no partial file behind."""
        return self.work()

    def summary(self, result: R) -> str:
        """One line about ``result`` for compile's stage table."""
        return ""

    def unavailable(self) -> str | None:
        """Why this stage is not run (asked not to, or it cannot run here: no TensorRT), or ``None``."""
        return self.skip_reason

    def environment_facts(self) -> tuple[str, ...]:
        return ("swin_trt", *self.environment)

    def key(self) -> dict:
        return {"stage": self.name,
                "inputs": {role: fingerprint(value) for role, value in self.inputs.items()},
                "options": options_key(self.options),
                "environment": {fact: ENVIRONMENT[fact]() for fact in self.environment_facts()}}
