#!/usr/bin/env python
"""Train the bundled dense demo model ``swin_demo_seg``: a Swin segmenter on mosaics of real photos.

Why: the FP16/INT8 cost of a dense model is measured in mIoU, and random weights make that meaningless, so
the project trains a small segmentation model of its own and ships it as the dense yardstick (as
``swin_demo`` is for classification). It is not a general segmenter: it tells apart regions of the same
twelve photos ``swin_demo`` knows, one class per photo.

Model: :class:`swin_trt.models.segmentation.SwinSegmenter`, the reference Swin in features mode (swin_demo's
shape: embed 48, depths 2-2-2, window 7) at 128x128, the smallest size a dynamic-size export takes for this
window, with an FPN-lite head that upsamples to the input. The backbone starts from the bundled
``swin_demo`` weights (its classifier and final norm dropped): a backbone pretrained on the same photos'
training regions, as segmentation models start from a classification checkpoint.

Data: mosaics. Each is a power (weighted Voronoi) diagram of 2-5 regions with straight boundaries at any
angle; each region shows a crop of one photo, resized to the mosaic's size, and every pixel's label is its
photo. The split is ``swin_demo``'s (``scripts/train_demo.py``: each photo cut 4x4, four cells held out,
training crops a gap away from them): training mosaics take training crops (flips, colour jitter),
validation mosaics take crops inside the held-out cells only, so no validation pixel was ever seen by the
backbone or the head.

Everything is seeded (python, numpy, torch), the data order is a fixed function of ``--seed``, no data
workers, ``torch.set_num_threads(2)``, deterministic algorithms: the same machine reproduces the same weights.

Writes (each file atomically) into ``--out`` (default: the package's ``swin_trt/assets``):

* ``swin_demo_seg.safetensors``: weights (timm backbone keys + ``decode_head.*``), fp32
* ``swin_demo_seg.json``: ``{"config", "preprocessing", "metrics"}`` (``swin_trt.models.demo``)
* ``demo_seg/images/<nnn>.png``, ``demo_seg/masks/<nnn>.png``: held-out mosaics and their masks
  (pixel value = class index), what ``swin-trt validate --data ... --masks ...`` reads

The reported ``val_miou`` is measured the way users measure it: the saved weights through the checkpoint
import (``create_model("swin_demo_seg")`` once the files are in the package), the saved PNGs through the
recorded preprocessing, argmax, IoU per class from a confusion matrix (``swin_trt.validate.segmentation``).

    python scripts/train_dense_demo.py                          # the committed weights
    python scripts/train_dense_demo.py --quick --out /tmp/seg   # a few steps: a smoke test of the pipeline
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see train_demo.py: shared cores, same numbers

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_demo as classification  # noqa: E402  the photos, their split and the training helpers

from swin_trt.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing  # noqa: E402
from swin_trt.models import SwinConfig  # noqa: E402
from swin_trt.models.demo import (DEMO_SEG_CONFIG, DEMO_SEG_DIR, DEMO_SEG_NAME, DEMO_SEG_WEIGHTS,  # noqa: E402
                                  DEMO_WEIGHTS)
from swin_trt.models.segmentation import SwinSegmenter  # noqa: E402
from swin_trt.validate.segmentation import Confusion  # noqa: E402

SIZE = (128, 128)  # (window 7 + 1) x 16 px per last-stage token: the smallest size --dynamic-size exports at
MODEL = dict(img_size=SIZE, patch_size=4, embed_dim=48, depths=(2, 2, 2), num_heads=(3, 6, 12), window_size=7,
             convention="timm")
REGIONS = (2, 5)  # photos per mosaic (inclusive)
VAL_MOSAICS = 160  # the full held-out set, evaluated in memory
SAVE_MOSAICS = 32  # how many of them ship as demo_seg/images + masks
BACKBONE_LR_SCALE = 0.25  # the pretrained backbone learns at this fraction of the head's rate


def region_map(rng: np.random.Generator, size: tuple[int, int], regions: int) -> np.ndarray:
    """``(H, W)`` region index per pixel: a power diagram (Voronoi with weights) of ``regions`` random seeds."""
    height, width = size
    seeds = rng.uniform(0, 1, (regions, 2)) * (height, width)
    weights = rng.uniform(0, 0.1, regions) * height * width  # unequal regions; one may vanish
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    distance = (ys[None] - seeds[:, 0, None, None]) ** 2 + (xs[None] - seeds[:, 1, None, None]) ** 2
    return np.argmin(distance - weights[:, None, None], axis=0)


def mosaic(samplers, rng: np.random.Generator, size: tuple[int, int], validation: bool):
    """One mosaic: ``(H, W, 3)`` uint8 pixels and ``(H, W)`` uint8 labels (class = photo)."""
    count = int(rng.integers(REGIONS[0], REGIONS[1] + 1))
    classes = rng.choice(len(samplers), count, replace=False)
    regions = region_map(rng, size, count)
    pixels = np.zeros((*size, 3), dtype=np.uint8)
    for region, label in enumerate(classes):
        sampler = samplers[label]
        if validation:
            box = sampler.val_box(rng, sampler.val_cells[int(rng.integers(len(sampler.val_cells)))])
            crop = np.asarray(sampler.photo.resize((size[1], size[0]), Image.Resampling.BICUBIC, box=box))
        else:
            crop = sampler.train_crop(rng, size)  # random box, resized, flipped half the time
        inside = regions == region
        pixels[inside] = crop[inside]
    return pixels, classes[regions].astype(np.uint8)


def train_batch(samplers, rng: np.random.Generator, batch: int):
    images, labels = zip(*(mosaic(samplers, rng, SIZE, validation=False) for _ in range(batch)))
    x = classification.jittered(np.stack(images), rng, IMAGENET_MEAN, IMAGENET_STD)
    return x, torch.from_numpy(np.stack(labels).astype(np.int64))


@torch.no_grad()
def confusion(model, preprocessor, images, masks, classes: int, batch: int = 32) -> Confusion:
    """Masks (rows) against the model's argmax, images through the eval transform."""
    model.eval()
    result = Confusion(classes)
    for start in range(0, len(images), batch):
        x = np.stack([preprocessor(image) for image in images[start:start + batch]])
        predicted = model(torch.from_numpy(x)).argmax(dim=1).numpy()
        result.update(np.stack(masks[start:start + batch]), predicted)
    return result


def read_mosaics(folder: Path):
    images, masks = [], []
    for path in sorted((folder / "images").glob("*.png")):
        with Image.open(path) as image:
            images.append(image.convert("RGB"))
        with Image.open(folder / "masks" / path.name) as mask:
            masks.append(np.asarray(mask))
    return images, masks


def evaluate_folder(folder: Path) -> dict:
    """mIoU of the saved model on the saved mosaics, through the users' eval path."""
    model, preprocessor, data = classification.load_bundle(folder, DEMO_SEG_NAME, DEMO_SEG_CONFIG, DEMO_SEG_WEIGHTS,
                                                           SwinSegmenter)
    names = list(data["config"]["class_names"])
    images, masks = read_mosaics(folder / DEMO_SEG_DIR)
    result = confusion(model, preprocessor, images, masks, len(names))
    iou = result.iou()
    return {"miou": result.miou(), "pixel_accuracy": result.pixel_accuracy(), "images": len(images),
            "class_iou": {name: None if np.isnan(v) else round(float(v), 4) for name, v in zip(names, iou)}}


def main(argv=None) -> int:
    parser, args, bundled = classification.training_arguments(
        argv, __doc__.split("\n\n")[0], "swin_demo_seg.{safetensors,json} and demo_seg/", 16,
        "peak AdamW rate of the head")
    out = args.out
    backbone_weights = classification.backbone_weights(parser)
    steps, batch = classification.run_length(parser, args, 4)
    val_count = 4 if args.quick else VAL_MOSAICS
    save_count = 2 if args.quick else SAVE_MOSAICS

    classification.seed_everything(args.seed)
    class_names = [name for name, _ in classification.CLASSES]
    samplers = [classification.CropSampler(photo) for photo in classification.load_photos()]
    config = SwinConfig(num_classes=len(class_names), class_names=tuple(class_names), **MODEL)
    preprocessing = {"crop_pct": 1.0, "interpolation": "bicubic", "mean": list(IMAGENET_MEAN),
                     "std": list(IMAGENET_STD), "fit": "stretch"}
    eval_pre = Preprocessing.from_dict(preprocessing).at(SIZE)

    # The held-out mosaics come from their own generator: they do not depend on --steps or the batch size.
    val_rng = np.random.default_rng([args.seed, 1])
    val_images, val_masks = zip(*(mosaic(samplers, val_rng, SIZE, validation=True) for _ in range(val_count)))

    model = SwinSegmenter(config)
    backbone_sha = classification.pretrained_backbone(model, backbone_weights, "decode_head.")
    params = sum(p.numel() for p in model.parameters())
    head_params = sum(p.numel() for p in model.decode_head.parameters())
    groups = classification.head_param_groups(model, 0.05, "decode_head.", BACKBONE_LR_SCALE)
    rng = np.random.default_rng([args.seed, 0])

    def held_out(model):
        miou = confusion(model, eval_pre, val_images, val_masks, len(class_names)).miou()
        return {"heldout_miou": round(miou, 4)}, f"held-out mIoU {miou:.3f}"

    print(f"{DEMO_SEG_NAME}: {len(class_names)} classes, {params / 1e6:.2f}M parameters ({head_params / 1e3:.1f}k "
          f"in the head), {steps} steps x batch {batch} at {SIZE[0]}x{SIZE[1]}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)
    history, train_seconds = classification.train(
        model, groups, steps, args.lr, 50, lambda: train_batch(samplers, rng, batch),
        lambda model, data: F.cross_entropy(model(data[0]), data[1]), held_out)

    heldout = confusion(model, eval_pre, val_images, val_masks, len(class_names))
    print(f"trained in {train_seconds / 60:.1f} min; held-out mIoU ({val_count} mosaics, in memory): "
          f"{heldout.miou():.4f}, pixel accuracy {heldout.pixel_accuracy():.4f}", flush=True)

    recipe = {
        **classification.split_recipe(),
        "mosaics": f"{SIZE[0]}x{SIZE[1]}, a power diagram of {REGIONS[0]}-{REGIONS[1]} regions (distinct photos, "
                   f"seeds uniform, weights U(0, 0.1) x area); each region a crop of its photo resized to the "
                   f"mosaic's size, label = the photo",
        "train_crops": "swin_demo's training boxes (0.12-0.3 x the shorter side, aspect 0.8-1.25, bicubic, flip "
                       "p=0.5), colour jitter per mosaic (brightness/contrast/saturation x U(0.8, 1.2))",
        "val_crops": f"swin_demo's validation boxes inside a random held-out cell (0.14-0.25 x the shorter side, "
                     f"bicubic); {save_count} mosaics saved as demo_seg/, {val_count} for heldout_miou",
        "skimage_version": __import__("skimage").__version__,
    }
    metadata = {"arch": DEMO_SEG_NAME, "seed": args.seed, "steps": steps, "batch_size": batch,
                "torch": torch.__version__}
    weights, dtype = classification.state_bytes(model, metadata)

    with classification.staging_dir(out) as staging:
        (staging / DEMO_SEG_WEIGHTS).write_bytes(weights)
        bundle = staging / DEMO_SEG_DIR
        (bundle / "images").mkdir(parents=True)
        (bundle / "masks").mkdir()
        for index in range(save_count):
            Image.fromarray(val_images[index]).save(bundle / "images" / f"{index:03d}.png", optimize=True)
            Image.fromarray(val_masks[index], mode="L").save(bundle / "masks" / f"{index:03d}.png", optimize=True)
        document = {"config": config.to_dict(), "preprocessing": preprocessing, "head": "fpn_lite", "metrics": {}}
        (staging / DEMO_SEG_CONFIG).write_text(json.dumps(document, indent=2) + "\n")

        result = evaluate_folder(staging)
        document["metrics"] = {
            "val_miou": round(result["miou"], 4),
            "val_pixel_accuracy": round(result["pixel_accuracy"], 4),
            "val_images": result["images"],
            "val_class_iou": result["class_iou"],
            "val_measured_with": "saved weights through the checkpoint import, demo_seg/images/*.png stretched "
                                 "to 128x128 (bicubic, ImageNet mean/std), argmax, IoU per class against "
                                 "demo_seg/masks/*.png, mean over classes present",
            "heldout_miou": round(heldout.miou(), 4),
            "heldout_pixel_accuracy": round(heldout.pixel_accuracy(), 4),
            "heldout_images": val_count,
            "history": history,
            "train_seconds": round(train_seconds, 1),
            "steps": steps,
            "batch_size": batch,
            "lr": args.lr,
            "optimizer": f"AdamW (weight decay 0.05), warmup + cosine, backbone at {BACKBONE_LR_SCALE} x the "
                         f"head's rate, cross-entropy per pixel, grad clip 5",
            "backbone_init": f"{DEMO_WEIGHTS} (sha256 {backbone_sha}), classifier and final norm dropped",
            "seed": args.seed,
            "quick": args.quick,
            "parameters": params,
            "head_parameters": head_params,
            "weights_dtype": dtype,
            **classification.environment("scripts/train_dense_demo.py", argv),
            "dataset": recipe,
        }
        classification.install(staging, out, DEMO_SEG_DIR, DEMO_SEG_WEIGHTS, weights, DEMO_SEG_CONFIG, document)

    print(f"validation mIoU on {result['images']} demo_seg mosaics: {result['miou']:.4f}")
    if bundled:
        classification.check_bundled(evaluate_folder, out, DEMO_SEG_NAME, "miou", "mIoU", result)
    classification.print_written(out, DEMO_SEG_WEIGHTS, dtype, DEMO_SEG_CONFIG, DEMO_SEG_DIR, "*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
