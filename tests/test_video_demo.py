"""swin3d_demo, the Video Swin yardstick trained here (scripts/train_video_demo.py): the bundled model
tells its eight camera motions apart on the held-out clips it ships, decoded from their mp4 files."""

import json

import av
import numpy as np
import pytest
import torch

from swin_trt.models import create_model
from swin_trt.models.demo import DEMO_VIDEO_CONFIG, assets_dir, demo_video_clips_dir

CHANCE = 1 / 8


def _clip(path, mean, std) -> np.ndarray:
    """(3, T, H, W) float32, normalised per frame as the model was trained."""
    with av.open(str(path)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    pixels = frames.astype(np.float32) / 255.0
    pixels = (pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return pixels.transpose(3, 0, 1, 2)


@pytest.fixture(scope="module")
def demo():
    model, spec, _ = create_model("swin3d_demo")
    recorded = json.loads((assets_dir() / DEMO_VIDEO_CONFIG).read_text())
    return model.eval(), spec, recorded


def test_the_bundled_clips_are_classified_as_measured_and_depend_on_frame_order(demo):
    model, spec, recorded = demo
    names = list(model.config.class_names)
    paths = sorted(demo_video_clips_dir().glob("*/*.mp4"))
    assert len(paths) == recorded["metrics"]["clips"] and {p.parent.name for p in paths} == set(names)
    pre = recorded["preprocessing"]
    clips = torch.from_numpy(np.stack([_clip(p, pre["mean"], pre["std"]) for p in paths]))
    labels = torch.tensor([names.index(p.parent.name) for p in paths])
    assert tuple(clips.shape[2:]) == tuple(model.config.clip_size)
    with torch.no_grad():
        accuracy = (model(clips).argmax(1) == labels).float().mean().item()
        # one clip may flip where two logits are within float noise on another CPU, never more
        assert accuracy >= recorded["metrics"]["clips_top1"] - 1 / len(paths)
        assert accuracy > 4 * CHANCE
        reversed_clips = clips.flip(2)  # a pan left played backwards is a pan right: the model must see time
        reversed_accuracy = (model(reversed_clips).argmax(1) == labels).float().mean().item()
    assert reversed_accuracy < accuracy / 2
