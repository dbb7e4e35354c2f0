"""Held-out validation data when ``compile`` is given calibration data only.

Validating on the images a model was calibrated on overstates how well INT8 holds up, so compile splits
``--calib-data`` when no ``--val-data`` is given: every 4th image (sorted order, labels kept) is held out
and written to ``OUTDIR/heldout.txt``, the rest to ``OUTDIR/calibration.txt``. A video cannot be split by
file: its held-out set is frames taken between the sampled calibration frames (other frames of the same
scenes), written as PNGs to ``OUTDIR/heldout/``. A clip model (Video Swin) is validated on clips, so its
held-out data are whole videos of the folder (every 4th), linked from ``OUTDIR/heldout/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.images import list_images
from ..data.video_frames import is_video, sample_frames
from ..errors import UserError
from ..io import atomic_output

EVERY = 4  # one image in EVERY is held out
MAX_VIDEO_FRAMES = 64


@dataclass
class Split:
    calibration: Path  # what calibrate reads
    validation: Path  # what validate reads
    message: str


def _write_list(path: Path, lines: list[str]) -> None:
    with atomic_output(path) as temporary:
        temporary.write_text("".join(f"{line}\n" for line in lines))


def _entry(item) -> str:
    path = str(Path(item.path).resolve())
    if any(c.isspace() for c in path):
        raise UserError(f"{path!r} has white space in its path, which a list file cannot hold: rename it, or pass "
                        f"`val_data` so that nothing needs splitting")
    return f"{path} {item.label}" if item.label else path


def split_images(calib_data: Path, outdir: Path) -> Split:
    items = list_images(calib_data)
    if len(items) < 2:
        raise UserError(f"`calib_data` {str(calib_data)!r} has {len(items)} image(s): nothing can be held out to "
                        f"validate on; add images or pass `val_data`")
    held = [item for index, item in enumerate(items) if index % EVERY == EVERY - 1]
    kept = [item for index, item in enumerate(items) if index % EVERY != EVERY - 1]
    calibration, validation = outdir / "calibration.txt", outdir / "heldout.txt"
    _write_list(calibration, [_entry(item) for item in kept])
    _write_list(validation, [_entry(item) for item in held])
    return Split(calibration, validation,
                 f"no `val_data`: validating on {len(held)} of the {len(items)} images of {calib_data} (every "
                 f"{EVERY}th, listed in {validation.name}), calibrating on the other {len(kept)}")


def split_video(video: Path, outdir: Path, calib_num: int) -> Split:
    from PIL import Image

    count = max(1, min(MAX_VIDEO_FRAMES, calib_num // EVERY))
    folder = outdir / "heldout"
    folder.mkdir(parents=True, exist_ok=True)
    frames = sample_frames(video, count, phase=0.0)  # calibration samples at phase 0.5: other frames
    for old in folder.glob("frame_*.png"):
        old.unlink()
    for frame in frames:
        with atomic_output(folder / f"frame_{frame.index:04d}.png") as temporary:
            Image.fromarray(frame.rgb).save(temporary, format="PNG")
    return Split(video, folder,
                 f"no `val_data`: validating on {len(frames)} frames of {video.name} taken between the calibration "
                 f"frames ({folder.name}/): other frames of the same scenes, so pass `val_data` for an "
                 f"independent check")


def _linked(videos: list[Path], base: Path, folder: Path) -> None:
    """``folder`` holding a link to each of ``videos`` at its path below ``base`` (class folders kept)."""
    if folder.is_dir():
        for old in sorted(folder.rglob("*"), reverse=True):
            old.rmdir() if old.is_dir() and not old.is_symlink() else old.unlink()
    for video in videos:
        link = folder / video.relative_to(base)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(video.resolve())


def split_videos(calib_data: Path, outdir: Path) -> Split:
    """A clip model's held-out data are whole videos: every EVERY-th video of the folder (sorted, class folders
    kept), linked from ``OUTDIR/heldout/``; the others from ``OUTDIR/calibration/``."""
    from ..data.clips import list_videos

    videos = list_videos(calib_data)
    if len(videos) < 2:
        raise UserError(f"`calib_data` {str(calib_data)!r} has {len(videos)} video(s), and a clip model's held-out "
                        f"data are whole videos: give a folder of several videos, or pass `val_data`")
    held = [video for index, video in enumerate(videos) if index % EVERY == EVERY - 1]
    kept = [video for index, video in enumerate(videos) if index % EVERY != EVERY - 1]
    calibration, validation = outdir / "calibration", outdir / "heldout"
    _linked(kept, calib_data, calibration)
    _linked(held, calib_data, validation)
    return Split(calibration, validation,
                 f"no `val_data`: validating on {len(held)} of the {len(videos)} videos of {calib_data} (every "
                 f"{EVERY}th, linked in {validation.name}/), calibrating on the other {len(kept)}")


def split(calib_data: Path, outdir: Path, calib_num: int, clips: bool = False) -> Split:
    """Split ``calib_data`` into calibration and held-out validation data (see the module doc); ``clips``: the
    model takes clips, so the data are videos and whole videos are held out."""
    if clips:
        return split_videos(Path(calib_data), outdir)
    if is_video(calib_data):
        return split_video(calib_data, outdir, calib_num)
    return split_images(calib_data, outdir)
