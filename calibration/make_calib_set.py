#!/usr/bin/env python
"""Assemble a calibration set: images sampled evenly from folders, frames sampled evenly from videos.

Deterministic: the same sources and counts give the same files (folders are read in sorted order and
sampled at even positions; video frame k of n is the first frame at or after (k + 0.5) / n of the
duration). Image files are copied byte for byte; video frames are written as PNG (lossless: no second
compression on top of the video's).

    # 512 images in all, shared evenly between the sources
    python calibration/make_calib_set.py photos/ dashcam.mp4 night.mp4 --num 512 -o calib_set/
    # per-source counts from a recipe (see recipe.example.toml)
    python calibration/make_calib_set.py --recipe calibration/recipe.example.toml

Then: ``swin-trt calibrate model.onnx --data calib_set/ -o calib.json``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tomllib
from pathlib import Path

from PIL import Image

from swin_trt.data.images import IMAGE_SUFFIXES
from swin_trt.data.video_frames import is_video, sample_frames
from swin_trt.precision.sources import evenly


def shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` counts that differ by at most one."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def take_images(folder: Path, count: int, out: Path, prefix: str) -> int:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    for k, index in enumerate(evenly(len(files), count)):
        source = files[index]
        shutil.copyfile(source, out / f"{prefix}_{k:05d}{source.suffix.lower()}")
    return min(count, len(files))


def take_frames(video: Path, count: int, out: Path, prefix: str) -> int:
    frames = sample_frames(video, count)
    for frame in frames:
        Image.fromarray(frame.rgb).save(out / f"{prefix}_{frame.index:05d}.png")
    return len(frames)


def build(sources: list[tuple[Path, int]], out: Path) -> int:
    if out.exists() and any(out.iterdir()):
        sys.exit(f"error: {out} is not empty: choose a new folder (mixing runs would break determinism)")
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for number, (path, count) in enumerate(sources):
        prefix = f"{number:02d}_{path.stem}"
        if path.is_dir():
            got = take_images(path, count, out, prefix)
        elif is_video(path):
            got = take_frames(path, count, out, prefix)
        else:
            sys.exit(f"error: {path} is neither a folder of images nor a video")
        print(f"{path}: {got} of {count}")
        written += got
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="*", type=Path, help="folders of images and/or video files")
    parser.add_argument("--num", type=int, default=512, help="images in all, shared evenly (default 512)")
    parser.add_argument("--recipe", type=Path, help="a TOML recipe with per-source counts")
    parser.add_argument("-o", "--output", type=Path, help="the folder to create (or the recipe's 'output')")
    args = parser.parse_args(argv)
    if args.recipe:
        recipe = tomllib.loads(args.recipe.read_text())
        base = args.recipe.parent
        sources = [(base / entry["path"], int(entry["count"])) for entry in recipe["source"]]
        out = args.output or base / recipe["output"]
    else:
        if not args.sources or not args.output:
            parser.error("give sources and -o, or --recipe")
        sources = list(zip(args.sources, shares(args.num, len(args.sources))))
        out = args.output
    written = build(sources, out)
    print(f"wrote {written} images to {out}")


if __name__ == "__main__":
    main()
