"""File helpers: atomic writes (no partial output is ever left behind), hashes, sidecars."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

SIDECAR_SUFFIX = ".json"


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(temporary)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; a finished file gets the usual mode
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json(path: str | Path, data) -> None:
    with atomic_output(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_fingerprint(files, extra: str = "") -> str:
    """sha256 over the sorted ``name, size, sha256(content)`` lines of ``files`` (``(name, path)`` pairs).

    The same data gives the same value wherever it lies and whatever the files' times say; one changed
    pixel changes it. A file that cannot be read counts as its name with size -1.
    """
    lines = []
    for name, path in files:
        try:
            lines.append(f"{name}\t{Path(path).stat().st_size}\t{sha256_file(path)}")
        except OSError:
            lines.append(f"{name}\t-1\t")
    return hashlib.sha256(("\n".join(sorted(lines)) + extra).encode()).hexdigest()


def sidecar_path(model_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json``: the provenance every later stage reads."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + SIDECAR_SUFFIX)


def read_sidecar(model_path: str | Path) -> dict | None:
    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    return json.loads(path.read_text())
