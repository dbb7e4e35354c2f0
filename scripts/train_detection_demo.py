#!/usr/bin/env python
"""Train the bundled detection demo ``swin_demo_det``: a Swin with torchvision's FCOS head on mosaics of real photos.

Why: detectors bring what classifiers and segmenters do not (NMS, top-k, a score threshold: outputs whose
shapes depend on the pixels), and what FP16/INT8 cost them is measured in mAP, which random weights make
meaningless. So the project trains a small detector of its own and ships it as the detection yardstick, as
``swin_demo`` and ``swin_demo_seg`` are for classification and segmentation. It finds crops of the same twelve
photos ``swin_demo`` knows, one class per photo; it is not a general detector.

Model: :class:`swin_trt.models.detection.SwinDetector`, the reference Swin in features mode (swin_demo's
shape: embed 48, depths 2-2-2, window 7) at 224x224 (stages 56, 28, 14: the window divides every stage), an
FPN on the stride-8 and stride-16 maps and torchvision's FCOS head (the module's docstring says why FCOS).
The backbone starts from the bundled ``swin_demo`` weights (classifier and final norm dropped), as detectors
start from a classification checkpoint, and its patch embedding and first stage stay frozen: a short training
suffices.

Data: mosaics. Each is a smooth random background (a 3x3 grid of colours, bicubic-upsampled) with 1-4 photo
crops pasted side by side, never overlapping, so every box is the whole visible object: side 22-50% of the
mosaic's (log-uniform), aspect 0.7-1.4, class = its photo (a class may repeat). The split is ``swin_demo``'s
(``scripts/train_demo.py``: each photo cut 4x4, four cells held out, training crops a gap away from them):
training mosaics take training crops (flipped half the time, colour jitter per mosaic), validation mosaics
take crops inside the held-out cells only, so no validation pixel was ever seen by the backbone or the head.

Everything is seeded (python, numpy, torch), the data order is a fixed function of ``--seed``, no data
workers, ``torch.set_num_threads(2)``, deterministic algorithms: the same machine reproduces the same weights.

Writes (each file atomically) into ``--out`` (default: the package's ``swin_trt/assets``):

* ``swin_demo_det.safetensors``: weights (timm backbone keys + torchvision's FCOS under ``detector.*``), fp32
* ``swin_demo_det.json``: ``{"config", "preprocessing", "head", "metrics"}`` (``swin_trt.models.demo``)
* ``demo_det/images/<nnn>.png``, ``demo_det/annotations.json``: held-out mosaics and their boxes in COCO
  ``instances`` form (category id = label = class index), what ``swin-trt validate --annotations`` reads

The reported ``val_map`` is measured the way users measure it: the saved weights through the checkpoint
import (``create_model("swin_demo_det")`` once the files are in the package), the saved PNGs through the
recorded preprocessing, mAP@[.5:.95] and AP50 by pycocotools against the saved annotations.

    python scripts/train_detection_demo.py                          # the committed weights
    python scripts/train_detection_demo.py --quick --out /tmp/det   # a few steps: a smoke test of the pipeline
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see train_demo.py: shared cores, same numbers

import contextlib
import copy
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_demo as classification  # noqa: E402  the photos, their split and the training helpers

from swin_trt.models import SwinConfig  # noqa: E402
from swin_trt.models.demo import (DEMO_DET_CONFIG, DEMO_DET_DIR, DEMO_DET_NAME, DEMO_DET_WEIGHTS,  # noqa: E402
                                  DEMO_WEIGHTS)
from swin_trt.models.detection import PREPROCESSING, SwinDetector, head_summary  # noqa: E402

SIZE = (224, 224)  # stages 56, 28, 14: multiples of the window, so no stage is padded
MODEL = dict(img_size=SIZE, patch_size=4, embed_dim=48, depths=(2, 2, 2), num_heads=(3, 6, 12), window_size=7,
             convention="timm")
OBJECTS = (1, 4)  # crops per mosaic (inclusive); fewer where the next one finds no free place
OBJECT_SIDE = (0.22, 0.5)  # a crop's side (geometric mean of width and height) as a fraction of the mosaic's
OBJECT_ASPECT = (0.7, 1.4)  # width / height
SPACING = 2  # px between pasted crops: no box covers another
PLACEMENT_TRIES = 30
VAL_MOSAICS = 128  # the full held-out set, evaluated in memory
SAVE_MOSAICS = 32  # how many of them ship as demo_det/
BACKBONE_LR_SCALE = 0.25  # the pretrained backbone learns at this fraction of the head's rate
# The patch embedding and the first stage stay as swin_demo trained them, as torchvision freezes a pretrained
# backbone's stem and first stage: the FPN does not read stage 0, and its backward is a quarter of a step.
FROZEN = ("patch_embed.", "layers.0.")
ANNOTATIONS = "annotations.json"


def background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """``(H, W, 3)`` uint8: a smooth field of colours, nothing like the photos' textures."""
    grid = rng.integers(40, 216, (3, 3, 3)).astype(np.uint8)
    return np.array(Image.fromarray(grid).resize((size[1], size[0]), Image.Resampling.BICUBIC))


def free_place(rng: np.random.Generator, box_size: tuple[int, int], boxes: list, size: tuple[int, int]):
    """``(left, top)`` for a ``(w, h)`` crop that keeps ``SPACING`` from every box placed so far, or ``None``."""
    w, h = box_size
    for _ in range(PLACEMENT_TRIES):
        left, top = int(rng.integers(0, size[1] - w + 1)), int(rng.integers(0, size[0] - h + 1))
        if all(left >= b[2] + SPACING or b[0] >= left + w + SPACING or top >= b[3] + SPACING
               or b[1] >= top + h + SPACING for b in boxes):
            return left, top
    return None


def object_crop(sampler, rng: np.random.Generator, box_size: tuple[int, int], validation: bool) -> np.ndarray:
    """A crop of ``sampler``'s photo resized to ``(w, h)``: from a held-out cell, or a training box (flipped half
    the time)."""
    if validation:
        box = sampler.val_box(rng, sampler.val_cells[int(rng.integers(len(sampler.val_cells)))])
    else:
        box = sampler.train_box(rng)
    pixels = np.asarray(sampler.photo.resize(box_size, Image.Resampling.BICUBIC, box=box))
    if not validation and rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    return pixels


def mosaic(samplers, rng: np.random.Generator, size: tuple[int, int], validation: bool):
    """One mosaic: ``(H, W, 3)`` uint8 pixels, ``(n, 4)`` float32 boxes (x1, y1, x2, y2 in pixels, x2 = x1 + width)
    and ``(n,)`` int64 labels (class = photo)."""
    pixels = background(rng, size)
    boxes, labels = [], []
    short = min(size)
    for _ in range(int(rng.integers(OBJECTS[0], OBJECTS[1] + 1))):
        label = int(rng.integers(len(samplers)))
        side = short * math.exp(rng.uniform(math.log(OBJECT_SIDE[0]), math.log(OBJECT_SIDE[1])))
        aspect = math.exp(rng.uniform(math.log(OBJECT_ASPECT[0]), math.log(OBJECT_ASPECT[1])))
        w, h = min(size[1], round(side * math.sqrt(aspect))), min(size[0], round(side / math.sqrt(aspect)))
        place = free_place(rng, (w, h), boxes, size)
        if place is None:
            continue
        left, top = place
        pixels[top:top + h, left:left + w] = object_crop(samplers[label], rng, (w, h), validation)
        boxes.append((left, top, left + w, top + h))
        labels.append(label)
    return pixels, np.array(boxes, dtype=np.float32).reshape(-1, 4), np.array(labels, dtype=np.int64)


def train_batch(samplers, rng: np.random.Generator, batch: int):
    """Jittered mosaics in 0..1 (the detector normalises inside) and their FCOS targets."""
    images, boxes, labels = zip(*(mosaic(samplers, rng, SIZE, validation=False) for _ in range(batch)))
    x = classification.jittered(np.stack(images), rng, PREPROCESSING.mean, PREPROCESSING.std)
    targets = [{"boxes": torch.from_numpy(b), "labels": torch.from_numpy(lab)} for b, lab in zip(boxes, labels)]
    return x, targets


@torch.no_grad()
def detect(model: SwinDetector, preprocessor, images, batch: int = 16) -> list[tuple[np.ndarray, ...]]:
    """``(boxes, scores, labels)`` of each image (PIL or uint8 array), through the eval transform."""
    model.eval()
    found = []
    for start in range(0, len(images), batch):
        x = np.stack([preprocessor(image) for image in images[start:start + batch]])
        found += [(f["boxes"].numpy(), f["scores"].numpy(), f["labels"].numpy())
                  for f in model.detect(torch.from_numpy(x))]
    return found


def coco_annotations(file_names, boxes, labels, class_names, size: tuple[int, int]) -> dict:
    """COCO ``instances`` JSON: bbox ``[x, y, width, height]`` in image pixels, category id = label; image and
    annotation ids count from 1 (pycocotools takes an id of 0 for "no match")."""
    images = [{"id": i + 1, "file_name": name, "width": size[1], "height": size[0]}
              for i, name in enumerate(file_names)]
    annotations = []
    for image, image_boxes, image_labels in zip(images, boxes, labels):
        for (x1, y1, x2, y2), label in zip(image_boxes.tolist(), image_labels.tolist()):
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": int(label),
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    return {"info": {"description": "swin_demo_det held-out mosaics (scripts/train_detection_demo.py)"},
            "licenses": [], "images": images, "annotations": annotations,
            "categories": [{"id": i, "name": name} for i, name in enumerate(class_names)]}


def coco_map(annotations: dict, found) -> dict:
    """mAP@[.5:.95] and AP50 of ``found`` (one ``(boxes, scores, labels)`` per image of ``annotations``, in its
    order) by pycocotools, the reference COCO evaluator."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        sys.exit("error: the mAP needs pycocotools (a dependency of swin-trt): pip install pycocotools")
    results = [{"image_id": image["id"], "category_id": int(label), "score": float(score),
                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)]}
               for image, (boxes, scores, labels) in zip(annotations["images"], found)
               for (x1, y1, x2, y2), score, label in zip(boxes, scores, labels)]
    if not results:
        return {"map": 0.0, "ap50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        truth = COCO()
        truth.dataset = copy.deepcopy(annotations)
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {"map": float(evaluation.stats[0]), "ap50": float(evaluation.stats[1])}


def read_mosaics(folder: Path):
    """The saved mosaics in their annotations' order, and the annotations."""
    annotations = json.loads((folder / ANNOTATIONS).read_text())
    images = []
    for entry in annotations["images"]:
        with Image.open(folder / "images" / entry["file_name"]) as image:
            images.append(image.convert("RGB"))
    return images, annotations


def evaluate_folder(folder: Path) -> dict:
    """mAP and AP50 of the saved model on the saved mosaics, through the users' eval path."""
    model, preprocessor, _ = classification.load_bundle(folder, DEMO_DET_NAME, DEMO_DET_CONFIG, DEMO_DET_WEIGHTS,
                                                        SwinDetector)
    images, annotations = read_mosaics(folder / DEMO_DET_DIR)
    found = detect(model, preprocessor, images)
    return {**coco_map(annotations, found), "images": len(images), "objects": len(annotations["annotations"]),
            "detections": int(sum(len(f[0]) for f in found))}


def main(argv=None) -> int:
    parser, args, bundled = classification.training_arguments(
        argv, __doc__.split("\n\n")[0], "swin_demo_det.{safetensors,json} and demo_det/", 8,
        "peak AdamW rate of the head", steps=600)
    out = args.out
    backbone_weights = classification.backbone_weights(parser)
    steps, batch = classification.run_length(parser, args, 2)
    val_count = 4 if args.quick else VAL_MOSAICS
    save_count = 2 if args.quick else SAVE_MOSAICS

    classification.seed_everything(args.seed)
    class_names = [name for name, _ in classification.CLASSES]
    samplers = [classification.CropSampler(photo) for photo in classification.load_photos()]
    config = SwinConfig(num_classes=len(class_names), class_names=tuple(class_names), **MODEL)
    preprocessing = {key: value for key, value in PREPROCESSING.to_dict(None).items()
                     if key in ("crop_pct", "interpolation", "mean", "std", "fit", "scale")}
    eval_pre = PREPROCESSING.at(SIZE)

    # The held-out mosaics come from their own generator: they do not depend on --steps or the batch size.
    val_rng = np.random.default_rng([args.seed, 1])
    val_images, val_boxes, val_labels = zip(*(mosaic(samplers, val_rng, SIZE, validation=True)
                                              for _ in range(val_count)))
    val_names = [f"{index:03d}.png" for index in range(val_count)]
    val_annotations = coco_annotations(val_names, val_boxes, val_labels, class_names, SIZE)

    model = SwinDetector(config)
    backbone_sha = classification.pretrained_backbone(model, backbone_weights, "detector.")
    params = sum(p.numel() for p in model.parameters())
    head_params = sum(p.numel() for p in model.detector.parameters())
    groups = classification.head_param_groups(model, 0.05, "detector.", BACKBONE_LR_SCALE, FROZEN)
    rng = np.random.default_rng([args.seed, 0])

    def held_out(model):
        score = coco_map(val_annotations, detect(model, eval_pre, val_images))
        return ({"heldout_map": round(score["map"], 4), "heldout_ap50": round(score["ap50"], 4)},
                f"held-out mAP {score['map']:.3f}, AP50 {score['ap50']:.3f}")

    print(f"{DEMO_DET_NAME}: {len(class_names)} classes, {params / 1e6:.2f}M parameters ({head_params / 1e3:.1f}k "
          f"in FPN + FCOS head), {steps} steps x batch {batch} at {SIZE[0]}x{SIZE[1]}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)
    history, train_seconds = classification.train(
        model, groups, steps, args.lr, 50, lambda: train_batch(samplers, rng, batch),
        lambda model, data: sum(model.losses(*data).values()), held_out)

    heldout = coco_map(val_annotations, detect(model, eval_pre, val_images))
    print(f"trained in {train_seconds / 60:.1f} min; held-out mAP ({val_count} mosaics, in memory): "
          f"{heldout['map']:.4f}, AP50 {heldout['ap50']:.4f}", flush=True)

    recipe = {
        **classification.split_recipe(),
        "mosaics": f"{SIZE[0]}x{SIZE[1]}: a 3x3 grid of random colours (40-215 per channel) upsampled bicubic, "
                   f"{OBJECTS[0]}-{OBJECTS[1]} crops (class uniform, repeats allowed) pasted at random free places "
                   f"{SPACING} px apart ({PLACEMENT_TRIES} tries each, else left out), side {OBJECT_SIDE[0]}-"
                   f"{OBJECT_SIDE[1]} x the mosaic's (log-uniform), aspect {OBJECT_ASPECT[0]}-{OBJECT_ASPECT[1]}; "
                   f"box = the pasted crop, label = its photo",
        "train_crops": "swin_demo's training boxes (0.12-0.3 x the shorter side, aspect 0.8-1.25), bicubic to the "
                       "object's size, flip p=0.5, colour jitter per mosaic (brightness/contrast/saturation x "
                       "U(0.8, 1.2))",
        "val_crops": f"swin_demo's validation boxes inside a random held-out cell (0.14-0.25 x the shorter side, "
                     f"bicubic to the object's size); {save_count} mosaics saved as demo_det/, {val_count} for "
                     f"heldout_map",
        "skimage_version": __import__("skimage").__version__,
    }
    metadata = {"arch": DEMO_DET_NAME, "seed": args.seed, "steps": steps, "batch_size": batch,
                "torch": torch.__version__}
    weights, dtype = classification.state_bytes(model, metadata)

    with classification.staging_dir(out) as staging:
        (staging / DEMO_DET_WEIGHTS).write_bytes(weights)
        bundle = staging / DEMO_DET_DIR
        (bundle / "images").mkdir(parents=True)
        for index in range(save_count):
            Image.fromarray(val_images[index]).save(bundle / "images" / val_names[index], optimize=True)
        saved = coco_annotations(val_names[:save_count], val_boxes[:save_count], val_labels[:save_count],
                                 class_names, SIZE)
        (bundle / ANNOTATIONS).write_text(json.dumps(saved, indent=1) + "\n")
        document = {"config": config.to_dict(), "preprocessing": preprocessing, "head": head_summary(),
                    "metrics": {}}
        (staging / DEMO_DET_CONFIG).write_text(json.dumps(document, indent=2) + "\n")

        result = evaluate_folder(staging)
        document["metrics"] = {
            "val_map": round(result["map"], 4),
            "val_ap50": round(result["ap50"], 4),
            "val_images": result["images"],
            "val_objects": result["objects"],
            "val_measured_with": "saved weights through the checkpoint import, demo_det/images/*.png as they are "
                                 "(224x224, pixels / 255), every detection the model returns (score >= "
                                 f"{head_summary()['score_thresh']}), pycocotools bbox mAP@[.5:.95] and AP50 "
                                 "against demo_det/annotations.json",
            "heldout_map": round(heldout["map"], 4),
            "heldout_ap50": round(heldout["ap50"], 4),
            "heldout_images": val_count,
            "history": history,
            "train_seconds": round(train_seconds, 1),
            "steps": steps,
            "batch_size": batch,
            "lr": args.lr,
            "optimizer": f"AdamW (weight decay 0.05), warmup + cosine, backbone at {BACKBONE_LR_SCALE} x the "
                         f"head's rate, {', '.join(p.rstrip('.') for p in FROZEN)} frozen, FCOS's losses (focal, "
                         f"GIoU, centerness) summed, grad clip 5",
            "backbone_init": f"{DEMO_WEIGHTS} (sha256 {backbone_sha}), classifier and final norm dropped",
            "seed": args.seed,
            "quick": args.quick,
            "parameters": params,
            "head_parameters": head_params,
            "weights_dtype": dtype,
            **classification.environment("scripts/train_detection_demo.py", argv,
                                         torchvision=__import__("torchvision").__version__),
            "dataset": recipe,
        }
        classification.install(staging, out, DEMO_DET_DIR, DEMO_DET_WEIGHTS, weights, DEMO_DET_CONFIG, document)

    print(f"validation mAP on {result['images']} demo_det mosaics ({result['objects']} objects): "
          f"{result['map']:.4f}, AP50 {result['ap50']:.4f}")
    if bundled:
        classification.check_bundled(evaluate_folder, out, DEMO_DET_NAME, "map", "mAP", result)
    classification.print_written(out, DEMO_DET_WEIGHTS, dtype, DEMO_DET_CONFIG, DEMO_DET_DIR, "*")
    return 0


if __name__ == "__main__":
    sys.exit(main())
