#!/usr/bin/env python
"""Train the demo Video Swin ``swin_demo_video``: camera motion in synthetic clips of scikit-image's photos.

Why: a Video Swin's accuracy under FP16/INT8 means something only for trained weights, and the one thing a
video model has that an image model lacks is *time*. So the task here can only be solved from the order of
the frames: each clip is a crop window moving over a photo (pan left/right/up/down, zoom in/out, roll
clockwise/counter-clockwise), every single frame is just a crop of a photo, and the label is the motion.

Data (all rendered on the fly, no files): a clip picks a photo, a window size, a start angle, a motion class
and a speed, then places the whole trajectory inside the photo at a random start; each frame is one affine
warp (Pillow, bilinear) of the photo to ``SIZE``. Camera convention: "pan left" moves the window left over the
photo (the scene slides right on screen), "zoom in" shrinks the window (the scene grows), "rotate clockwise"
turns the window clockwise over the photo (the scene turns counter-clockwise on screen). Every clip starts at
a random angle (all classes), so a tilted frame says nothing about the class. The split is by *photo*:
``TEST_PHOTOS`` are never rendered for training, so held-out accuracy measures motion, not photo memory.

Measured on the held-out clips: accuracy; the same clips with their frames shuffled (one fixed random
non-identity permutation per clip), which should fall towards chance (1/8) if the model uses time; the
same clips with every frame replaced by the first (a static clip); and the same clips after an H.264 MP4
round trip (PyAV, what ``swin_trt.video`` writes), decoded back. The weights are measured after the
round trip through ``safetensors`` and the checkpoint import (``load_checkpoint`` + ``apply_state``).

Everything is seeded (python, numpy, torch), the data order is a fixed function of ``--seed``, no data
workers, ``torch.set_num_threads(2)``, deterministic algorithms.

Writes into ``--out`` (default: the package's ``swin_trt/assets/demo_video``; a README.md there is kept):

* ``swin_demo_video.safetensors``: the weights (``VideoSwinTransformer`` state dict, fp32)
* ``swin_demo_video.json``: ``{"config", "preprocessing", "metrics"}`` as the other demos' JSON
* ``clips/<class>/<nnn>.mp4``: a few held-out clips, H.264 (what ``clips_top1`` is measured on)

    python scripts/train_video_demo.py                        # the bundled weights
    python scripts/train_video_demo.py --quick --out /tmp/vd  # a few steps: a smoke test of the pipeline
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see train_demo.py: shared cores, same numbers

import argparse
import json
import math
import sys
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_demo as classification  # noqa: E402  the photos and the training helpers

from swin_trt.models.checkpoint import apply_state, load_checkpoint  # noqa: E402
from swin_trt.models.demo import assets_dir  # noqa: E402
from swin_trt.models.video_swin import VideoSwinConfig, VideoSwinTransformer  # noqa: E402
from swin_trt.preprocess import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from swin_trt.video.codecs import add_video_stream  # noqa: E402

NAME = "swin_demo_video"
FOLDER = "demo_video"
WEIGHTS = f"{NAME}.safetensors"
CONFIG = f"{NAME}.json"

MOTIONS = ("pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out", "rotate_cw", "rotate_ccw")
FRAMES = 8
SIZE = 64  # frames are SIZE x SIZE
CLIP = (FRAMES, SIZE, SIZE)
MODEL = dict(clip_size=CLIP, patch_size=(2, 4, 4), embed_dim=32, depths=(2, 2), num_heads=(2, 4),
             window_size=(4, 4, 4))

# Split by photo: these never appear in training clips (one natural photo, one texture, one microscopy image).
TEST_PHOTOS = ("cat", "grass", "ihc")
PHOTO_SHORT_SIDE = 256  # each photo is shrunk once (Lanczos) so its shorter side is this: windows of 64-128 px
WINDOW = (0.28, 0.45)  # window side at the start, x the (shrunk) photo's shorter side, log-uniform
START_ANGLE = 25.0  # every clip starts at U(-25, 25) degrees
PAN_SPEED = (0.04, 0.10)  # window sides per frame
ZOOM_SPEED = (1.04, 1.10)  # window scale factor per frame
ROLL_SPEED = (3.0, 7.0)  # degrees per frame
MIN_STD = 6.0  # clips whose first frame is flatter than this (grey std, 0..255) are resampled
JITTER = 0.2  # per-clip brightness/contrast/saturation x U(1 - JITTER, 1 + JITTER), training only
VAL_PER_PHOTO_CLASS = 32  # held-out clips per (test photo, motion): 3 x 8 x 32 = 768
SAVE_PER_CLASS = 2  # held-out clips that ship as clips/<class>/<nnn>.mp4
FPS = 8
CRF = 12  # libx264 quality for the shipped clips (18 is "visually lossless"; the clips are tiny either way)


def load_photos() -> dict[str, Image.Image]:
    """train_demo's twelve photos, RGB, shrunk to ``PHOTO_SHORT_SIDE`` on the shorter side."""
    photos = {}
    for (name, _), photo in zip(classification.CLASSES, classification.load_photos()):
        scale = PHOTO_SHORT_SIDE / min(photo.size)
        if scale < 1:
            photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
        photos[name] = photo
    return photos


def trajectory(motion: str, rng: np.random.Generator, side: float):
    """Per frame, relative to the start: ``(dx, dy, scale, angle)`` (pixels, x the start side, degrees)."""
    t = np.arange(FRAMES, dtype=np.float64)
    dx, dy, scale, angle = np.zeros(FRAMES), np.zeros(FRAMES), np.ones(FRAMES), np.zeros(FRAMES)
    if motion.startswith("pan_"):
        step = rng.uniform(*PAN_SPEED) * side * t
        if motion == "pan_left":
            dx = -step
        elif motion == "pan_right":
            dx = step
        elif motion == "pan_up":
            dy = -step
        else:
            dy = step
    elif motion.startswith("zoom_"):
        factor = rng.uniform(*ZOOM_SPEED)
        scale = factor ** (-t if motion == "zoom_in" else t)
    else:  # image coordinates (y down): a growing angle turns the window clockwise on the photo
        angle = rng.uniform(*ROLL_SPEED) * t * (1 if motion == "rotate_cw" else -1)
    return dx, dy, scale, angle


def render_clip(photo: Image.Image, gray: np.ndarray, motion: str, rng: np.random.Generator) -> np.ndarray:
    """One clip, ``(T, H, W, 3)`` uint8: the window's trajectory placed inside the photo at a random start."""
    width, height = photo.size
    short = min(width, height)
    side = short * math.exp(rng.uniform(math.log(WINDOW[0]), math.log(WINDOW[1])))
    start = rng.uniform(-START_ANGLE, START_ANGLE)
    dx, dy, scale, angle = trajectory(motion, rng, side)
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])
    for attempt in range(60):
        if attempt and attempt % 10 == 0:
            side, dx, dy = side * 0.85, dx * 0.85, dy * 0.85  # does not fit often: a smaller window, same motion
        theta = np.radians(start + angle)
        cos, sin = np.cos(theta), np.sin(theta)
        # every frame's corners relative to the start centre
        xs = dx[:, None] + side * scale[:, None] * (cos[:, None] * corners[:, 0] - sin[:, None] * corners[:, 1])
        ys = dy[:, None] + side * scale[:, None] * (sin[:, None] * corners[:, 0] + cos[:, None] * corners[:, 1])
        lo_x, hi_x = -xs.min(), width - xs.max()
        lo_y, hi_y = -ys.min(), height - ys.max()
        if lo_x >= hi_x or lo_y >= hi_y:
            continue
        cx, cy = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
        left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        flat = float(gray[top:int(cy + side / 2), left:int(cx + side / 2)].std()) < MIN_STD
        if flat and attempt < 59:
            continue
        frames = []
        for i in range(FRAMES):
            pixel = side * scale[i] / SIZE  # photo pixels per output pixel
            a, b = pixel * cos[i], -pixel * sin[i]
            d, e = pixel * sin[i], pixel * cos[i]
            x0, y0 = cx + dx[i], cy + dy[i]
            # output pixel (u, v) -> photo (a u + b v + c, d u + e v + f); pixel centres at +0.5, window centred
            c = x0 - (a + b) * SIZE / 2
            f = y0 - (d + e) * SIZE / 2
            frames.append(np.asarray(photo.transform((SIZE, SIZE), Image.Transform.AFFINE, (a, b, c, d, e, f),
                                                     resample=Image.Resampling.BILINEAR)))
        return np.stack(frames)
    raise RuntimeError(f"no {motion} trajectory fits in a {width}x{height} photo")


class ClipSampler:
    def __init__(self, photos: list[Image.Image]):
        self.photos = photos
        self.grays = [np.asarray(p.convert("L")) for p in photos]

    def clip(self, rng: np.random.Generator, label: int, photo: int | None = None) -> np.ndarray:
        index = int(rng.integers(len(self.photos))) if photo is None else photo
        return render_clip(self.photos[index], self.grays[index], MOTIONS[label], rng)


def to_tensor(clips: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
    """``(B, T, H, W, 3)`` uint8 -> ``(B, 3, T, H, W)`` float32, ImageNet mean/std; colour jitter with ``rng``."""
    batch, frames = clips.shape[:2]
    flat = clips.reshape(batch * frames, SIZE, SIZE, 3)
    if rng is None:
        x = torch.from_numpy(flat.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
        x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    else:  # the same jitter for every frame of a clip
        factors = rng.uniform(1 - JITTER, 1 + JITTER, size=(3, batch)).astype(np.float32)
        x = torch.from_numpy(flat.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
        f = torch.from_numpy(np.repeat(factors, frames, axis=1)).view(3, -1, 1, 1, 1)
        x = x * f[0]
        gray = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        x = (x - gray.mean(dim=(1, 2, 3), keepdim=True)) * f[1] + gray.mean(dim=(1, 2, 3), keepdim=True)
        gray = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        x = ((x - gray) * f[2] + gray).clamp_(0.0, 1.0)
        x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = x.reshape(batch, frames, 3, SIZE, SIZE).permute(0, 2, 1, 3, 4)
    return x.contiguous()


def train_batch(sampler: ClipSampler, rng: np.random.Generator, batch: int):
    """A balanced batch (every motion ``batch // 8`` times, the rest at random) on random training photos."""
    n = len(MOTIONS)
    labels = np.concatenate([np.tile(np.arange(n), batch // n), rng.choice(n, batch % n, replace=False)])
    rng.shuffle(labels)
    clips = np.stack([sampler.clip(rng, int(label)) for label in labels])
    return to_tensor(clips, rng), torch.from_numpy(labels.astype(np.int64))


@torch.no_grad()
def predict(model, clips: np.ndarray, batch: int = 64) -> np.ndarray:
    model.eval()
    out = [model(to_tensor(clips[s:s + batch])).argmax(dim=1).numpy() for s in range(0, len(clips), batch)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def shuffled_orders(rng: np.random.Generator, count: int) -> np.ndarray:
    """One random permutation of the frames per clip, never the identity."""
    identity = np.arange(FRAMES)
    orders = []
    for _ in range(count):
        order = rng.permutation(FRAMES)
        while (order == identity).all():
            order = rng.permutation(FRAMES)
        orders.append(order)
    return np.stack(orders)


def write_mp4(path: Path, clip: np.ndarray) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = add_video_stream(container, SIZE, SIZE, FPS, preset="veryslow")
        if stream.codec_context.name == "libx264":
            stream.options = {**stream.options, "crf": str(CRF)}
        for index, pixels in enumerate(clip):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def read_mp4(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return np.stack(frames)


def mp4_round_trip(clips: np.ndarray, folder: Path) -> np.ndarray:
    out = []
    for index, clip in enumerate(clips):
        path = folder / f"{index:04d}.mp4"
        write_mp4(path, clip)
        decoded = read_mp4(path)
        assert decoded.shape == clip.shape, (decoded.shape, clip.shape)
        out.append(decoded)
        path.unlink()
    return np.stack(out)


def per_class(predicted: np.ndarray, labels: np.ndarray) -> dict:
    return {name: round(float((predicted[labels == i] == i).mean()), 4) for i, name in enumerate(MOTIONS)
            if (labels == i).any()}


def confusion(predicted: np.ndarray, labels: np.ndarray) -> list[list[int]]:
    matrix = np.zeros((len(MOTIONS), len(MOTIONS)), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix.tolist()


def read_clip_folder(root: Path) -> tuple[np.ndarray, np.ndarray]:
    clips, labels = [], []
    for label, name in enumerate(MOTIONS):
        for path in sorted((root / name).glob("*.mp4")):
            clips.append(read_mp4(path))
            labels.append(label)
    return np.stack(clips), np.array(labels, dtype=np.int64)


def load_saved(folder: Path) -> VideoSwinTransformer:
    """The saved model as a user builds it: config from the JSON, weights through the checkpoint import."""
    data = json.loads((folder / CONFIG).read_text())
    model = VideoSwinTransformer(VideoSwinConfig.from_dict(data["config"]))
    report = apply_state(model, load_checkpoint(folder / WEIGHTS))
    model.eval()
    return model, report


def arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    default = assets_dir() / FOLDER
    parser.add_argument("--out", type=Path, default=default, help="output folder (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=1200, help="optimizer steps (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="default: %(default)s")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="3 steps and a tiny held-out set: a smoke test")
    args = parser.parse_args(argv)
    bundled = args.out.resolve() == default.resolve()
    if args.quick and bundled:
        parser.error("--quick would overwrite the bundled model with untrained weights: pass --out DIR")
    if args.steps < 1 or args.batch_size < 1:
        parser.error("--steps and --batch-size must be >= 1")
    return args, bundled


def main(argv=None) -> int:
    args, bundled = arguments(argv)
    out = args.out
    steps = 3 if args.quick else args.steps
    batch = min(args.batch_size, 8) if args.quick else args.batch_size
    val_per = 1 if args.quick else VAL_PER_PHOTO_CLASS

    classification.seed_everything(args.seed)
    torch.set_num_threads(args.threads)
    photos = load_photos()
    train_names = [name for name in photos if name not in TEST_PHOTOS]
    train_sampler = ClipSampler([photos[n] for n in train_names])
    test_sampler = ClipSampler([photos[n] for n in TEST_PHOTOS])

    # Held-out clips from their own generator: independent of --steps and the batch size. Ordered photo-major,
    # then motion, then repeat; the shipped clips are the first SAVE_PER_CLASS of each motion over all photos.
    val_rng = np.random.default_rng([args.seed, 1])
    val_clips, val_labels, val_photos = [], [], []
    for repeat in range(val_per):
        for photo in range(len(TEST_PHOTOS)):
            for label in range(len(MOTIONS)):
                val_clips.append(test_sampler.clip(val_rng, label, photo))
                val_labels.append(label)
                val_photos.append(photo)
    val_clips, val_labels = np.stack(val_clips), np.array(val_labels)
    orders = shuffled_orders(np.random.default_rng([args.seed, 2]), len(val_clips))
    shuffled = np.take_along_axis(val_clips, orders[:, :, None, None, None], axis=1)
    static = np.repeat(val_clips[:, :1], FRAMES, axis=1)

    config = VideoSwinConfig(num_classes=len(MOTIONS), class_names=MOTIONS, **MODEL)
    model = VideoSwinTransformer(config)
    classification.init_weights(model)
    params = sum(p.numel() for p in model.parameters())
    rng = np.random.default_rng([args.seed, 0])

    def held_out(model):
        acc = float((predict(model, val_clips) == val_labels).mean())
        return {"heldout_top1": round(acc, 4)}, f"held-out top-1 {acc:.3f}"

    print(f"{NAME}: {len(MOTIONS)} motions, {params / 1e6:.3f}M parameters, clips {CLIP} (T, H, W), {steps} steps "
          f"x batch {batch}, train photos {train_names}, test photos {list(TEST_PHOTOS)}, "
          f"{len(val_clips)} held-out clips, torch {torch.__version__}, {torch.get_num_threads()} threads",
          flush=True)
    history, train_seconds = classification.train(
        model, classification.param_groups(model, 0.05), steps, args.lr, 100,
        lambda: train_batch(train_sampler, rng, batch),
        lambda model, data: F.cross_entropy(model(data[0]), data[1], label_smoothing=0.1), held_out)
    print(f"trained in {train_seconds / 60:.1f} min", flush=True)

    metadata = {"arch": NAME, "seed": args.seed, "steps": steps, "batch_size": batch, "torch": torch.__version__}
    weights, dtype = classification.state_bytes(model, metadata)
    preprocessing = {"crop_pct": 1.0, "interpolation": "bilinear", "mean": list(IMAGENET_MEAN),
                     "std": list(IMAGENET_STD), "fit": "stretch"}

    out.mkdir(parents=True, exist_ok=True)
    with classification.staging_dir(out) as staging:
        (staging / WEIGHTS).write_bytes(weights)
        document = {"config": config.to_dict(), "preprocessing": preprocessing, "metrics": {}}
        (staging / CONFIG).write_text(json.dumps(document, indent=2) + "\n")
        saved, report = load_saved(staging)  # everything below is measured on the saved weights

        predicted = predict(saved, val_clips)
        heldout = float((predicted == val_labels).mean())
        shuffled_acc = float((predict(saved, shuffled) == val_labels).mean())
        static_pred = predict(saved, static)
        static_acc = float((static_pred == val_labels).mean())
        work = staging / "roundtrip"
        work.mkdir()
        decoded = mp4_round_trip(val_clips, work)
        mp4_pred = predict(saved, decoded)
        mp4_acc = float((mp4_pred == val_labels).mean())
        psnr = float(10 * np.log10(255.0 ** 2 / np.mean((decoded.astype(np.float64) - val_clips) ** 2)))
        print(f"held-out top-1 {heldout:.4f} ({len(val_clips)} clips), frames shuffled {shuffled_acc:.4f}, static "
              f"{static_acc:.4f}, after the MP4 round trip {mp4_acc:.4f} (PSNR {psnr:.1f} dB)", flush=True)

        clips_dir = staging / "clips"
        picks = []
        for label, name in enumerate(MOTIONS):
            (clips_dir / name).mkdir(parents=True)
            chosen = [i for i in range(len(val_labels)) if val_labels[i] == label][:SAVE_PER_CLASS]
            for n, index in enumerate(chosen):
                write_mp4(clips_dir / name / f"{n:03d}.mp4", val_clips[index])
                picks.append(index)
        shipped, shipped_labels = read_clip_folder(clips_dir)
        shipped_acc = float((predict(saved, shipped) == shipped_labels).mean())
        shipped_memory = float((predicted[picks] == val_labels[picks]).mean())

        document["metrics"] = {
            "heldout_top1": round(heldout, 4),
            "heldout_clips": len(val_clips),
            "heldout_per_class": per_class(predicted, val_labels),
            "heldout_per_photo": {name: round(float((predicted[np.array(val_photos) == p]
                                                     == val_labels[np.array(val_photos) == p]).mean()), 4)
                                  for p, name in enumerate(TEST_PHOTOS)},
            "heldout_confusion": confusion(predicted, val_labels),
            "shuffled_frames_top1": round(shuffled_acc, 4),
            "static_clip_top1": round(static_acc, 4),
            "static_clip_predictions": {MOTIONS[i]: int((static_pred == i).sum()) for i in range(len(MOTIONS))},
            "mp4_roundtrip_top1": round(mp4_acc, 4),
            "mp4_roundtrip_psnr_db": round(psnr, 2),
            "chance": round(1 / len(MOTIONS), 4),
            "clips_top1": round(shipped_acc, 4),
            "clips": len(shipped_labels),
            "clips_top1_in_memory": round(shipped_memory, 4),
            "measured_with": "saved weights through load_checkpoint + apply_state, clips (B, 3, T, H, W) in "
                             "0..1 with ImageNet mean/std per frame, argmax; shuffled = one fixed random "
                             "non-identity frame permutation per clip (seed [seed, 2]); static = frame 0 "
                             f"repeated {FRAMES} times; MP4 = H.264 ({'libx264 crf ' + str(CRF)}, yuv420p, "
                             "PyAV) written and decoded back; clips_top1 = the shipped clips/*.mp4 decoded",
            "history": history,
            "train_seconds": round(train_seconds, 1),
            "steps": steps,
            "batch_size": batch,
            "train_clips_seen": steps * batch,
            "lr": args.lr,
            "optimizer": "AdamW (weight decay 0.05), warmup + cosine, label smoothing 0.1, grad clip 5",
            "seed": args.seed,
            "quick": args.quick,
            "parameters": params,
            "weights_dtype": dtype,
            "weights_sha256": report.sha256,
            "weights_tensors_loaded": report.loaded,
            **classification.environment("scripts/train_video_demo.py", argv, av=av.__version__),
            "dataset": {
                "source": "scikit-image sample photos (skimage/data), train_demo.py's twelve, each shrunk "
                          f"(Lanczos) to a shorter side of {PHOTO_SHORT_SIDE} px",
                "classes": list(MOTIONS),
                "clip": f"{FRAMES} frames of {SIZE}x{SIZE} RGB, each one affine warp (Pillow, bilinear) of the "
                        "photo: a square window moving over it",
                "split": f"by photo: held-out photos {list(TEST_PHOTOS)} are never rendered for training; "
                         f"training photos {train_names}",
                "motion": f"window side {WINDOW[0]}-{WINDOW[1]} x shorter side (log-uniform), start angle "
                          f"U(-{START_ANGLE}, {START_ANGLE}) deg for every class; pan {PAN_SPEED[0]}-"
                          f"{PAN_SPEED[1]} window sides/frame, zoom x{ZOOM_SPEED[0]}-{ZOOM_SPEED[1]}/frame, "
                          f"roll {ROLL_SPEED[0]}-{ROLL_SPEED[1]} deg/frame; the whole trajectory placed inside "
                          f"the photo at a random start (window shrunk 15% where it does not fit); clips whose "
                          f"start is flatter than grey std {MIN_STD} resampled",
                "convention": "camera motion: pan_left = window moves left over the photo (scene slides right "
                              "on screen); zoom_in = window shrinks; rotate_cw = window turns clockwise over "
                              "the photo (scene turns counter-clockwise on screen)",
                "train_clips": f"rendered on the fly, balanced motions, colour jitter x U({1 - JITTER}, "
                               f"{1 + JITTER}) per clip",
                "heldout_clips": f"{val_per} per (held-out photo, motion), generator seed [seed, 1]; the first "
                                 f"{SAVE_PER_CLASS} per motion ship as clips/<motion>/<nnn>.mp4",
                "skimage_version": __import__("skimage").__version__,
            },
        }
        config_text = json.dumps(document, indent=2) + "\n"
        classification._replace_dir(clips_dir, out / "clips")
        classification._write_atomic(out / WEIGHTS, weights)
        classification._write_atomic(out / CONFIG, config_text.encode())

    sizes = {p.relative_to(out).as_posix(): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}
    total = sum(sizes.values())
    clip_bytes = sum(v for k, v in sizes.items() if k.startswith("clips/"))
    print(f"shipped clips: {shipped_acc:.4f} on {len(shipped_labels)} decoded mp4s ({shipped_memory:.4f} in memory)")
    print(f"wrote {out}: {WEIGHTS} {sizes[WEIGHTS] / 1e6:.2f} MB ({dtype}), {CONFIG}, clips/ {clip_bytes / 1e3:.0f} kB; "
          f"total {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
