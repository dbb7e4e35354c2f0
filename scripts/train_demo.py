#!/usr/bin/env python
"""Train the bundled demo model ``swin_demo``: a small Swin on real photos that scikit-image ships.

Why: pretrained Swin checkpoints cannot be downloaded here, and random weights make accuracy-vs-precision
numbers meaningless (a trained network's activations have the outliers that make INT8 hard). So the project
trains a small Swin of its own and ships it as the yardstick for FP16/INT8 accuracy. It is not a general
classifier: it tells apart regions of twelve photos.

Dataset: one class per photo (``CLASSES``). Each photo is cut into a 4x4 grid and four cells, one per row
and column (``VAL_CELLS``), are held out for validation and never sampled for training: every training crop
keeps ``GAP`` (3% of the shorter side) away from them. Training crops: random boxes at several scales
(12-30% of the shorter side, aspect 0.8-1.25) resized to the network input, horizontal flips,
brightness/contrast/saturation jitter. Validation crops: square boxes inside the held-out cells, 128x128 PNG;
the eval transform (``Preprocessor``: shorter side to 112/0.875 = 128, centre crop 112) feeds them in.

Everything is seeded (python, numpy, torch), the data order is a fixed function of ``--seed``, no data
workers, ``torch.set_num_threads(2)``: the same machine reproduces the same weights.

Writes (each file atomically) into ``--out`` (default: the package's ``swin_trt/assets``):

* ``swin_demo.safetensors``: weights in the reference (timm) layout, fp32 (fp16 if fp32 were over 6 MB)
* ``swin_demo.json``: ``{"config", "preprocessing", "metrics"}`` (``swin_trt.models.demo``)
* ``demo_images/<class>/<nnn>.png``: a small held-out validation set (ImageFolder layout)

The reported ``val_top1`` is measured the way users measure it: the saved weights through the checkpoint
import (``create_model("swin_demo")`` once the files are in the package), the saved PNGs through
``Preprocessor``, argmax.

    python scripts/train_demo.py                 # the committed weights
    python scripts/train_demo.py --quick --out /tmp/demo   # a few steps: a smoke test of the pipeline
"""

from __future__ import annotations

import os

# Before torch loads OpenMP: on a shared 2-core machine, spinning worker threads slow training down 4-5x
# whenever another process runs. Scheduling only; the numbers are the same.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import contextlib
import json
import math
import platform
import random
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from swin_trt.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing, Preprocessor
from swin_trt.models import SwinConfig, SwinTransformer
from swin_trt.models.checkpoint import apply_state, load_checkpoint
from swin_trt.models.demo import DEMO_CONFIG, DEMO_NAME, DEMO_WEIGHTS, assets_dir

# class name -> file in skimage/data. Real photographs only (no synthetic charts, silhouettes or phantoms).
CLASSES = (
    ("astronaut", "astronaut.png"),
    ("brick", "brick.png"),
    ("cat", "chelsea.png"),
    ("coffee", "coffee.png"),
    ("coins", "coins.png"),
    ("grass", "grass.png"),
    ("gravel", "gravel.png"),
    ("hubble_deep_field", "hubble_deep_field.jpg"),
    ("ihc", "ihc.png"),
    ("motorcycle", "motorcycle_left.png"),
    ("retina", "retina.jpg"),
    ("rocket", "rocket.jpg"),
)

MODEL = dict(img_size=(112, 112), patch_size=4, embed_dim=48, depths=(2, 2, 2), num_heads=(3, 6, 12),
             window_size=7, convention="timm")
CROP_PCT = 0.875
SAVE_SIZE = 128  # round(112 / 0.875): the saved validation PNGs are exactly the Preprocessor's resize

GRID = 4  # each photo is cut into GRID x GRID cells ...
VAL_CELLS = ((0, 1), (1, 3), (2, 0), (3, 2))  # ... (row, column): held out for validation, one per row/column
GAP = 0.03  # no training pixel lies within GAP x the shorter side of a validation cell
TRAIN_SCALE = (0.12, 0.30)  # crop side as a fraction of the photo's shorter side (log-uniform)
VAL_SCALE = (0.14, 0.25)  # (capped to the cell)
ASPECT = (0.8, 1.25)
JITTER = 0.2  # brightness, contrast and saturation factors in [1 - JITTER, 1 + JITTER]
MIN_STD = 4.0  # crops flatter than this (grey-level std, 0..255) are resampled: e.g. the retina's black corners
VAL_PER_CLASS = 50  # the full held-out set, evaluated in memory
SAVE_PER_CLASS = 8  # how many of them ship as demo_images/<class>/<nnn>.png
FP32_LIMIT = 6 * 2 ** 20


def skimage_data_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def load_photos() -> list[Image.Image]:
    """The source photos, RGB (grayscale ones are converted)."""
    root = skimage_data_dir()
    photos = []
    for name, file in CLASSES:
        path = root / file
        if not path.is_file():
            sys.exit(f"error: {path} is missing: install scikit-image (pip install scikit-image)")
        with Image.open(path) as image:
            photos.append(image.convert("RGB"))
    return photos


Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive)


def val_cells(width: int, height: int) -> list[Box]:
    """The held-out cells of a ``width x height`` photo."""
    xs = [round(i * width / GRID) for i in range(GRID + 1)]
    ys = [round(i * height / GRID) for i in range(GRID + 1)]
    return [(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r, c in VAL_CELLS]


def _overlaps(a: Box, b: Box, margin: int = 0) -> bool:
    return (a[0] < b[2] + margin and b[0] - margin < a[2]) and (a[1] < b[3] + margin and b[1] - margin < a[3])


def is_training_box(box: Box, width: int, height: int) -> bool:
    """Inside the photo and at least the gap away from every validation cell."""
    gap = round(GAP * min(width, height))
    inside = 0 <= box[0] < box[2] <= width and 0 <= box[1] < box[3] <= height
    return inside and not any(_overlaps(box, cell, gap) for cell in val_cells(width, height))


class CropSampler:
    """Random boxes in the training part or in a validation cell of one photo; all randomness from ``rng``."""

    def __init__(self, photo: Image.Image):
        self.photo = photo
        self.gray = np.asarray(photo.convert("L"))
        self.short = min(photo.width, photo.height)
        self.val_cells = val_cells(photo.width, photo.height)

    def _size(self, rng, scale, aspect) -> tuple[int, int]:
        side = self.short * math.exp(rng.uniform(math.log(scale[0]), math.log(scale[1])))
        ratio = math.exp(rng.uniform(math.log(aspect[0]), math.log(aspect[1]))) if aspect else 1.0
        return max(8, round(side * math.sqrt(ratio))), max(8, round(side / math.sqrt(ratio)))

    def _flat(self, box: Box) -> bool:
        return float(self.gray[box[1]:box[3], box[0]:box[2]].std()) < MIN_STD

    def train_box(self, rng: np.random.Generator) -> Box:
        """Rejection sampling: a box anywhere in the photo that keeps clear of the validation cells."""
        width, height = self.photo.size
        w, h = self._size(rng, TRAIN_SCALE, ASPECT)
        fallback = None
        for attempt in range(400):
            if attempt and attempt % 50 == 0:  # too big to fit often: shrink a little
                w, h = max(8, round(w * 0.85)), max(8, round(h * 0.85))
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            box = (left, top, left + w, top + h)
            if is_training_box(box, width, height):
                if not self._flat(box):
                    return box
                fallback = fallback or box
        if fallback is None:
            raise RuntimeError(f"no training box fits in a {width}x{height} photo")
        return fallback

    def val_box(self, rng: np.random.Generator, cell: Box) -> Box:
        x0, y0, x1, y1 = cell
        side = self._size(rng, VAL_SCALE, None)[0]
        box = None
        for _ in range(20):
            w, h = min(side, x1 - x0), min(side, y1 - y0)
            left = x0 + int(rng.integers(0, x1 - x0 - w + 1))
            top = y0 + int(rng.integers(0, y1 - y0 - h + 1))
            box = (left, top, left + w, top + h)
            if not self._flat(box):
                break
        return box

    def train_crop(self, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
        crop = self.photo.resize((size[1], size[0]), Image.Resampling.BICUBIC, box=self.train_box(rng))
        pixels = np.asarray(crop)
        if rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        return pixels

    def val_crop(self, rng: np.random.Generator, index: int) -> np.ndarray:
        """The ``index``-th validation crop comes from cell ``index % len(VAL_CELLS)``."""
        box = self.val_box(rng, self.val_cells[index % len(self.val_cells)])
        return np.asarray(self.photo.resize((SAVE_SIZE, SAVE_SIZE), Image.Resampling.BICUBIC, box=box))


def train_batch(samplers, rng: np.random.Generator, batch: int, size, mean, std):
    """A balanced batch (every class ``batch // classes`` times, the rest at random), jittered, normalised."""
    n = len(samplers)
    labels = np.concatenate([np.tile(np.arange(n), batch // n), rng.choice(n, batch % n, replace=False)])
    rng.shuffle(labels)
    pixels = np.stack([samplers[c].train_crop(rng, size) for c in labels])
    return jittered(pixels, rng, mean, std), torch.from_numpy(labels.astype(np.int64))


def jittered(pixels: np.ndarray, rng: np.random.Generator, mean, std) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` float32 with brightness/contrast/saturation jitter, normalised."""
    x = torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(0, 3, 1, 2)  # B, 3, H, W in 0..1
    factors = torch.from_numpy(rng.uniform(1 - JITTER, 1 + JITTER, size=(3, len(x), 1, 1, 1)).astype(np.float32))
    x = x * factors[0]  # brightness
    gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = (x - gray.mean(dim=(1, 2, 3), keepdim=True)) * factors[1] + gray.mean(dim=(1, 2, 3), keepdim=True)
    gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = ((x - gray) * factors[2] + gray).clamp_(0.0, 1.0)  # saturation
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return x.contiguous()


def init_weights(model: torch.nn.Module) -> None:
    """timm's Swin init: truncated normal (std 0.02) linear weights, zero biases, unit LayerNorms."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, torch.nn.LayerNorm):
            torch.nn.init.ones_(module.weight)
            torch.nn.init.zeros_(module.bias)


def _no_decay(name: str, param: torch.nn.Parameter) -> bool:
    """swin_demo's decay rule: biases, norms and the relative position bias tables take no weight decay."""
    return param.ndim <= 1 or name.endswith("relative_position_bias_table")


def param_groups(model: torch.nn.Module, weight_decay: float):
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if _no_decay(name, param) else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def head_param_groups(model: torch.nn.Module, weight_decay: float, head_prefix: str, backbone_scale: float,
                      frozen: tuple[str, ...] = ()):
    """The dense and detection trainers' groups: swin_demo's decay rule, the backbone at ``backbone_scale`` of the
    head's (``head_prefix``) rate (the ``scale`` :func:`train` multiplies the rate by); parameters under
    ``frozen`` left out, and without gradients."""
    if frozen:
        for name, param in model.named_parameters():
            param.requires_grad_(not name.startswith(frozen))
    groups = []
    for is_head in (False, True):
        named = [(n, p) for n, p in model.named_parameters()
                 if p.requires_grad and n.startswith(head_prefix) == is_head]
        scale = 1.0 if is_head else backbone_scale
        decay = [p for n, p in named if not _no_decay(n, p)]
        rest = [p for n, p in named if _no_decay(n, p)]
        groups += [{"params": decay, "weight_decay": weight_decay, "scale": scale},
                   {"params": rest, "weight_decay": 0.0, "scale": scale}]
    return groups


def pretrained_backbone(model: torch.nn.Module, weights: Path, head_prefix: str) -> str:
    """Load swin_demo's weights into a dense or detection model's backbone (its classifier and final norm have no
    place there; only the head, ``head_prefix``, keeps its initialisation); their sha256."""
    checkpoint = load_checkpoint(weights)
    backbone = {k: v for k, v in checkpoint.tensors.items() if not k.startswith(("head.", "norm."))}
    missing, unexpected = model.load_state_dict(backbone, strict=False)
    assert not unexpected and all(k.startswith(head_prefix) for k in missing), (missing, unexpected)
    return checkpoint.sha256


def lr_at(step: int, steps: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(model: torch.nn.Module, groups, steps: int, lr: float, max_warmup: int, batches, loss_of, evaluate):
    """The demo trainers' loop: ``steps`` AdamW steps on ``groups`` (betas 0.9/0.999), each at :func:`lr_at`'s
    rate (warm-up ``steps // 10`` steps, 1 to ``max_warmup``) times the group's ``scale`` (1 where it has
    none), on the loss ``loss_of(model, batches())``, gradients clipped at norm 5, with a progress bar of the
    running loss. At a quarter, half and three quarters of a run of 40 steps or more, ``evaluate(model)`` gives
    ``(record, text)``: the record joins the history (with the step and the running loss), the text the line
    printed. Returns ``(history, seconds)``."""
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999))
    warmup = max(1, min(max_warmup, steps // 10))
    checkpoints = {steps // 4, steps // 2, 3 * steps // 4} if steps >= 40 else set()
    history = []
    started = time.perf_counter()
    bar = tqdm(range(steps), desc="train", unit="step", dynamic_ncols=True, mininterval=2.0)
    running = None
    for step in bar:
        model.train()
        rate = lr_at(step, steps, lr, warmup)
        for group in optimizer.param_groups:
            group["lr"] = rate * group.get("scale", 1.0)
        loss = loss_of(model, batches())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        bar.set_postfix(loss=f"{running:.3f}", lr=f"{rate:.2e}", refresh=False)
        if step + 1 in checkpoints:
            record, text = evaluate(model)
            history.append({"step": step + 1, **record, "loss": round(running, 4)})
            tqdm.write(f"step {step + 1}: loss {running:.3f}, {text}")
    seconds = time.perf_counter() - started
    bar.close()
    return history, seconds


@torch.no_grad()
def predict(model, preprocessor: Preprocessor, images, batch: int = 64) -> np.ndarray:
    """Top-1 class of each image (PIL or uint8 array), through the eval transform."""
    model.eval()
    out = []
    for start in range(0, len(images), batch):
        x = np.stack([preprocessor(image) for image in images[start:start + batch]])
        out.append(model(torch.from_numpy(x)).argmax(dim=1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def read_image_folder(root: Path, class_names) -> tuple[list[Image.Image], np.ndarray]:
    images, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.png")):
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
            labels.append(class_names.index(folder.name))
    return images, np.array(labels, dtype=np.int64)


def load_bundle(folder: Path, name: str = DEMO_NAME, config_file: str = DEMO_CONFIG,
                weights_file: str = DEMO_WEIGHTS, model_class=SwinTransformer):
    """Model and Preprocessor from a folder with ``<name>.{json,safetensors}``, as the registry builds them.

    For the package's own assets this is literally ``create_model(name)``; for any other folder it is the same
    steps (config from the JSON, weights through the checkpoint import). The dense and detection trainers pass
    their own names and ``SwinSegmenter`` / ``SwinDetector``."""
    data = json.loads((folder / config_file).read_text())
    if folder.resolve() == assets_dir().resolve():
        from swin_trt.models import create_model

        model, _, report = create_model(name)
        assert report is not None, f"{name} loaded without its bundled weights"
    else:
        model = model_class(SwinConfig.from_dict(data["config"]))
        apply_state(model, load_checkpoint(folder / weights_file))
        model.eval()
    preprocessor = Preprocessing.from_dict(data["preprocessing"]).at(tuple(model.config.img_size))
    return model, preprocessor, data


def evaluate_folder(folder: Path) -> dict:
    """Top-1 of the saved model on the saved demo_images, through the users' eval path."""
    model, preprocessor, data = load_bundle(folder)
    names = list(data["config"]["class_names"])
    images, labels = read_image_folder(folder / "demo_images", names)
    predicted = predict(model, preprocessor, images)
    per_class = {name: float((predicted[labels == i] == i).mean()) for i, name in enumerate(names)
                 if (labels == i).any()}
    return {"top1": float((predicted == labels).mean()), "images": len(labels), "per_class": per_class}


def _write_atomic(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600; assets are ordinary package files
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _replace_dir(staged: Path, target: Path) -> None:
    """Swap a finished folder into place (renames only; the old one is removed afterwards)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    os.replace(staged, target)
    if old is not None:
        shutil.rmtree(old)


@contextlib.contextmanager
def staging_dir(out: Path):
    """A fresh hidden folder inside ``out`` to write a bundle into before it moves into place; removed after."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-"))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install(staging: Path, out: Path, folder: str, weights_file: str, weights: bytes, config_file: str,
            document: dict) -> None:
    """Into place: the staged ``folder``, then the weights, then the JSON (which makes the model visible to the
    registry)."""
    config_text = json.dumps(document, indent=2) + "\n"
    _replace_dir(staging / folder, out / folder)
    _write_atomic(out / weights_file, weights)
    _write_atomic(out / config_file, config_text.encode())


def check_bundled(evaluate, out: Path, name: str, key: str, label: str, staged: dict) -> None:
    """With the files in the package, ``evaluate(out)`` is literally ``create_model(name)``: it must score what
    the staged files scored (``staged[key]``)."""
    check = evaluate(out)
    if abs(check[key] - staged[key]) > 1e-9:
        raise SystemExit(f"error: create_model('{name}') gives {label} {check[key]}, the staged files "
                         f"gave {staged[key]}")
    print(f"checked through create_model('{name}'): {label} {check[key]:.4f}")


def print_written(out: Path, weights_file: str, dtype: str, config_file: str, folder: str, pattern: str) -> None:
    size = (out / weights_file).stat().st_size
    folder_bytes = sum(p.stat().st_size for p in (out / folder).rglob(pattern) if p.is_file())
    print(f"wrote {out}: {weights_file} {size / 1e6:.2f} MB ({dtype}), {config_file}, {folder}/ "
          f"{folder_bytes / 1e6:.2f} MB")


def environment(script: str, argv, **versions) -> dict:
    """Where and how a training ran, for its metrics: torch's version (then ``versions``, other libraries'),
    numpy's, python's, the machine and the command."""
    return {"torch": torch.__version__, **versions, "numpy": np.__version__, "python": platform.python_version(),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
            "command": " ".join([f"python {script}", *(sys.argv[1:] if argv is None else argv)])}


def split_recipe() -> dict:
    """The dense and detection trainers' dataset recipe: the photos and swin_demo's split of them."""
    return {
        "source": "scikit-image sample photos (skimage/data), one class per photo (swin_demo's twelve)",
        "classes": {name: file for name, file in CLASSES},
        "split": f"swin_demo's: each photo cut into a {GRID}x{GRID} grid; validation = cells (row, column) "
                 f"{list(VAL_CELLS)}; every training crop stays {GAP} x the shorter side away from them",
    }


def state_bytes(model: torch.nn.Module, metadata: dict) -> tuple[bytes, str]:
    from safetensors.torch import save

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    fp32_size = sum(v.numel() * 4 for v in state.values())
    dtype = "float32" if fp32_size <= FP32_LIMIT else "float16"
    if dtype == "float16":
        state = {k: v.half() for k, v in state.items()}
    return canonical_safetensors(save(state, metadata={k: str(v) for k, v in metadata.items()})), dtype


def canonical_safetensors(blob: bytes) -> bytes:
    """The same file with its JSON header's keys sorted. safetensors writes the metadata map in hash order,
    which changes from run to run; sorted, equal weights and metadata give byte-identical files. Tensor
    offsets count from the end of the header, so the data bytes stay as they are."""
    size = struct.unpack("<Q", blob[:8])[0]
    header = json.dumps(json.loads(blob[8:8 + size]), separators=(",", ":"), sort_keys=True).encode()
    header += b" " * (-len(header) % 8)  # the format pads the header to 8 bytes with spaces
    return struct.pack("<Q", len(header)) + header + blob[8 + size:]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)


def training_arguments(argv, description: str, outputs: str, batch_size: int, lr_help: str, steps: int = 1000):
    """The flags the demo trainers take, parsed: ``(parser, args, bundled)``; ``bundled`` when ``--out`` is the
    package's assets folder (which ``--quick`` must never overwrite)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=assets_dir(),
                        help=f"folder for {outputs} (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=steps, help="optimizer steps (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="default: %(default)s")
    parser.add_argument("--lr", type=float, default=2e-3, help=f"{lr_help} (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument("--quick", action="store_true",
                        help="3 steps and a tiny validation set: a smoke test of the pipeline, not a model")
    args = parser.parse_args(argv)
    bundled = args.out.resolve() == assets_dir().resolve()
    if args.quick and bundled:
        parser.error("--quick would overwrite the bundled model with untrained weights: pass --out DIR")
    return parser, args, bundled


def run_length(parser: argparse.ArgumentParser, args, quick_batch: int) -> tuple[int, int]:
    """``(steps, batch)``: ``--steps`` and ``--batch-size``, or with ``--quick`` 3 steps and a batch of at most
    ``quick_batch``."""
    steps = 3 if args.quick else args.steps
    batch = min(args.batch_size, quick_batch) if args.quick else args.batch_size
    if steps < 1 or batch < 1:
        parser.error("--steps and --batch-size must be >= 1")
    return steps, batch


def backbone_weights(parser: argparse.ArgumentParser) -> Path:
    """The bundled swin_demo weights, which the dense and detection demos start from."""
    weights = assets_dir() / DEMO_WEIGHTS
    if not weights.is_file():
        parser.error(f"{weights} is missing: train swin_demo first (python scripts/train_demo.py)")
    return weights


def main(argv=None) -> int:
    parser, args, bundled = training_arguments(argv, __doc__.split("\n\n")[0],
                                               "swin_demo.{safetensors,json} and demo_images/", 32,
                                               "peak AdamW learning rate")
    out = args.out
    steps, batch = run_length(parser, args, 12)
    val_per_class = 2 if args.quick else VAL_PER_CLASS
    save_per_class = 1 if args.quick else SAVE_PER_CLASS

    seed_everything(args.seed)
    class_names = [name for name, _ in CLASSES]
    photos = load_photos()
    samplers = [CropSampler(photo) for photo in photos]
    config = SwinConfig(num_classes=len(class_names), class_names=tuple(class_names), **MODEL)
    size = config.img_size
    preprocessing = {"crop_pct": CROP_PCT, "interpolation": "bicubic", "mean": list(IMAGENET_MEAN),
                     "std": list(IMAGENET_STD)}

    # The held-out set comes from its own generator, so it does not depend on --steps or the batch size.
    val_rng = np.random.default_rng([args.seed, 1])
    val_images, val_labels = [], []
    for label, sampler in enumerate(samplers):
        for index in range(val_per_class):
            val_images.append(sampler.val_crop(val_rng, index))
            val_labels.append(label)
    val_labels = np.array(val_labels)
    eval_pre = Preprocessing(CROP_PCT, "bicubic", IMAGENET_MEAN, IMAGENET_STD).at(size)

    model = SwinTransformer(config)
    init_weights(model)
    params = sum(p.numel() for p in model.parameters())
    rng = np.random.default_rng([args.seed, 0])

    def held_out(model):
        acc = float((predict(model, eval_pre, val_images) == val_labels).mean())
        return {"heldout_top1": round(acc, 4)}, f"held-out top-1 {acc:.3f}"

    print(f"swin_demo: {len(class_names)} classes, {params / 1e6:.2f}M parameters, {steps} steps x batch "
          f"{batch}, torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    history, train_seconds = train(
        model, param_groups(model, 0.05), steps, args.lr, 100,
        lambda: train_batch(samplers, rng, batch, size, IMAGENET_MEAN, IMAGENET_STD),
        lambda model, data: F.cross_entropy(model(data[0]), data[1], label_smoothing=0.1), held_out)

    heldout = float((predict(model, eval_pre, val_images) == val_labels).mean())
    print(f"trained in {train_seconds / 60:.1f} min; held-out top-1 ({len(val_labels)} crops, in memory): "
          f"{heldout:.4f}", flush=True)

    recipe = {
        "source": "scikit-image sample photos (skimage/data), one class per photo",
        "classes": {name: file for name, file in CLASSES},
        "split": f"each photo cut into a {GRID}x{GRID} grid; validation = cells (row, column) "
                 f"{list(VAL_CELLS)}; every training crop stays {GAP} x the shorter side away from them",
        "train_crops": f"box side {TRAIN_SCALE[0]}-{TRAIN_SCALE[1]} x shorter side (log-uniform), aspect "
                       f"{ASPECT[0]}-{ASPECT[1]}, bicubic resize to {size[0]}x{size[1]}, horizontal flip p=0.5, "
                       f"brightness/contrast/saturation x U({1 - JITTER}, {1 + JITTER}); crops with grey std < "
                       f"{MIN_STD} resampled",
        "val_crops": f"square box side {VAL_SCALE[0]}-{VAL_SCALE[1]} x shorter side inside a validation cell "
                     f"(capped to the cell, cells in turn), bicubic "
                     f"resize to {SAVE_SIZE}x{SAVE_SIZE}; {SAVE_PER_CLASS} per class saved as demo_images, "
                     f"{VAL_PER_CLASS} per class for heldout_top1",
        "skimage_version": __import__("skimage").__version__,
    }
    metadata = {"arch": DEMO_NAME, "seed": args.seed, "steps": steps, "batch_size": batch,
                "torch": torch.__version__}
    weights, dtype = state_bytes(model, metadata)

    with staging_dir(out) as staging:
        (staging / DEMO_WEIGHTS).write_bytes(weights)
        image_dir = staging / "demo_images"
        for label, name in enumerate(class_names):
            (image_dir / name).mkdir(parents=True)
            picks = [i for i in range(len(val_labels)) if val_labels[i] == label][:save_per_class]
            for n, index in enumerate(picks):
                image = Image.fromarray(val_images[index])
                if np.ptp(val_images[index].astype(np.int16), axis=2).max() == 0:
                    image = image.convert("L")  # a grayscale photo: a third of the bytes, same pixels once RGB
                image.save(image_dir / name / f"{n:03d}.png", optimize=True)
        document = {"config": config.to_dict(), "preprocessing": preprocessing, "metrics": {}}
        (staging / DEMO_CONFIG).write_text(json.dumps(document, indent=2) + "\n")

        result = evaluate_folder(staging)
        document["metrics"] = {
            "val_top1": round(result["top1"], 4),
            "val_images": result["images"],
            "val_per_class": {k: round(v, 4) for k, v in result["per_class"].items()},
            "val_measured_with": "saved weights through the checkpoint import, demo_images/*.png through "
                                 "Preprocessor(crop=112, crop_pct=0.875, bicubic), argmax",
            "heldout_top1": round(heldout, 4),
            "heldout_images": len(val_labels),
            "history": history,
            "train_seconds": round(train_seconds, 1),
            "steps": steps,
            "batch_size": batch,
            "lr": args.lr,
            "optimizer": "AdamW (weight decay 0.05), warmup + cosine, label smoothing 0.1, grad clip 5",
            "seed": args.seed,
            "quick": args.quick,
            "parameters": params,
            "weights_dtype": dtype,
            **environment("scripts/train_demo.py", argv),
            "dataset": recipe,
        }
        install(staging, out, "demo_images", DEMO_WEIGHTS, weights, DEMO_CONFIG, document)

    print(f"validation top-1 on {result['images']} demo_images: {result['top1']:.4f}")
    if bundled:
        check_bundled(evaluate_folder, out, DEMO_NAME, "top1", "top-1", result)
    print_written(out, DEMO_WEIGHTS, dtype, DEMO_CONFIG, "demo_images", "*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
