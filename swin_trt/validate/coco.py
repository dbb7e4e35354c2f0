"""True detection quality against COCO ``instances`` annotations: mAP@[.5:.95] and AP50 by pycocotools.

* Images are matched by file name: the basename of ``images[].file_name`` against the validated file's name.
  Annotated images that were not validated are left out of the evaluation (they are not missed detections);
  validated images without an entry are counted and said in the notes.
* Boxes come out of the model in its input pixels; COCO's are in the original image's. Each box is mapped back
  through the preprocessing the image went through (:func:`to_source_pixels`): the stretch, or the resize of
  the shorter side and the centre crop of ``crop_pct``.
* Labels are category ids: a detection's label is its ``category_id`` as it is (torchvision's COCO detectors
  number their labels by COCO category id, background 0). A model trained on a contiguous 0..K-1 numbering
  needs annotations numbered the same way.
* Every detection the model outputs is evaluated (COCO keeps the 100 highest scores per image); the score
  threshold of the agreement metrics does not apply, as in COCO's own protocol.

Only the detections are held until the end (7 numbers each): pycocotools evaluates them all at once.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np

from ..preprocess import Preprocessor
from ..errors import UserError
from ..data.detection_outputs import Detections


def to_source_pixels(boxes: np.ndarray, preprocessor: Preprocessor, width: int, height: int) -> np.ndarray:
    """``(N, 4)`` x1, y1, x2, y2 boxes in the model's input pixels -> the same boxes in the pixels of the
    ``width x height`` image they were computed from (the inverse of ``preprocessor``'s fit)."""
    left, top, right, bottom = preprocessor.source_box(width, height)
    crop_h, crop_w = preprocessor.crop
    scale = np.array([(right - left) / crop_w, (bottom - top) / crop_h] * 2)
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * scale + np.array([left, top, left, top])


class CocoAnnotations:
    """A COCO instances file, its images indexed by file name (basename)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"annotations {str(self.path)!r} does not exist: pass a COCO instances JSON file "
                            f"(images, annotations, categories)")
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"annotations {str(self.path)!r} is not JSON ({exc}): pass a COCO instances file") from None
        missing = [k for k in ("images", "annotations", "categories") if not isinstance(data, dict) or k not in data]
        if missing:
            raise UserError(f"annotations {str(self.path)!r} has no {', '.join(missing)}: a COCO instances file "
                            f"has images (id, file_name, width, height), annotations (image_id, category_id, bbox "
                            f"[x, y, w, h]) and categories (id, name)")
        self.data = self._checked(data)
        self.by_name = {Path(str(image["file_name"])).name: image for image in data["images"]}
        self.category_ids = {c["id"] for c in data["categories"]}
        self._ground_truth = None

    def _checked(self, data: dict) -> dict:
        """``data`` with the keys COCOeval reads that hand-made files often leave out (``iscrowd``, ``area``,
        ``id``) filled in; an entry without what no evaluation can do without is an error naming it."""
        where = f"annotations {str(self.path)!r}"
        for key, entries, needed in (("images", data["images"], ("id", "file_name")),
                                     ("categories", data["categories"], ("id",)),
                                     ("annotations", data["annotations"], ("image_id", "category_id", "bbox"))):
            for index, entry in enumerate(entries):
                missing = [k for k in needed if not isinstance(entry, dict) or k not in entry]
                ids = [k for k in needed if k.endswith("id") and k not in missing and not isinstance(entry[k], int)]
                if missing or ids:
                    problems = ([f"lacks {', '.join(missing)}"] if missing else []) + \
                        ([f"has a non-integer {', '.join(ids)}"] if ids else [])
                    raise UserError(f"{where}: {key}[{index}] {' and '.join(problems)}: every entry of {key} needs "
                                    f"{', '.join(needed)} (ids are integers)")
        for index, annotation in enumerate(data["annotations"]):
            box = annotation["bbox"]
            if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
                raise UserError(f"{where}: annotations[{index}].bbox is {box!r}, not [x, y, width, height] in the "
                                f"image's pixels")
            annotation.setdefault("id", index + 1)
            annotation.setdefault("iscrowd", 0)
            annotation.setdefault("area", float(box[2]) * float(box[3]))
        return data

    def ground_truth(self):
        """The pycocotools ``COCO`` of these annotations, indexed once."""
        if self._ground_truth is None:
            from pycocotools.coco import COCO

            with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
                self._ground_truth = COCO()
                self._ground_truth.dataset = self.data
                self._ground_truth.createIndex()
        return self._ground_truth

    def image_for(self, path) -> dict | None:
        """The annotations' image entry of a validated file (by its name), or ``None``."""
        return self.by_name.get(Path(path).name)

    def check_matches(self, paths: list) -> int:
        """How many of ``paths`` are annotated; none is an error (a mismatch of names, not of boxes)."""
        matched = sum(self.image_for(p) is not None for p in paths)
        if not matched:
            sample = ", ".join(Path(p).name for p in paths[:3])
            listed = ", ".join(list(self.by_name)[:3]) or "no images"
            raise UserError(f"annotations {str(self.path)!r} match none of the {len(paths)} images validated "
                            f"(e.g. {sample}; the file lists {listed}): images are matched by file name, the "
                            f"basename of images[].file_name; validate the annotated images, or fix file_name")
        return matched


class CocoDetections:
    """One model's detections on the annotated images, in the original images' pixels, until evaluated."""

    def __init__(self):
        self.rows: list[np.ndarray] = []  # per image: (N, 7) image_id, x, y, w, h, score, category_id
        self.images: set[int] = set()

    def add(self, image_id: int, detections: Detections, preprocessor: Preprocessor, width: int,
            height: int) -> None:
        boxes = to_source_pixels(detections.boxes, preprocessor, width, height)
        rows = np.empty((len(boxes), 7))
        rows[:, 0] = image_id
        rows[:, 1:3] = boxes[:, :2]
        rows[:, 3:5] = boxes[:, 2:] - boxes[:, :2]
        rows[:, 5] = detections.scores
        rows[:, 6] = detections.labels
        self.rows.append(rows)
        self.images.add(image_id)

    def evaluate(self, annotations: CocoAnnotations) -> dict:
        """``map`` (AP@[.5:.95]) and ``ap50`` by pycocotools, over the images added; ``None`` where the
        annotated images hold no box at all. A model with no detection scores 0."""
        try:
            from pycocotools.cocoeval import COCOeval
        except ImportError:
            raise UserError("annotations need pycocotools (COCO's own evaluator): pip install pycocotools") from None
        rows = np.concatenate(self.rows) if self.rows else np.zeros((0, 7))
        image_ids = sorted(self.images)
        truth = [a for a in annotations.data["annotations"] if a["image_id"] in self.images]
        if not truth:
            return {"map": None, "ap50": None}
        if not len(rows):
            return {"map": 0.0, "ap50": 0.0}
        results = [{"image_id": int(r[0]), "bbox": [float(v) for v in r[1:5]], "score": float(r[5]),
                    "category_id": int(r[6])} for r in rows]
        ground_truth = annotations.ground_truth()
        # pycocotools prints its progress and its table to stdout, where `validate --json` writes the report.
        with contextlib.redirect_stdout(io.StringIO()):
            evaluation = COCOeval(ground_truth, ground_truth.loadRes(results), "bbox")
            evaluation.params.imgIds = image_ids
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        ap, ap50 = (float(v) for v in evaluation.stats[:2])
        return {"map": ap if ap >= 0 else None, "ap50": ap50 if ap50 >= 0 else None}  # -1: nothing to score

    def categories(self) -> set[int]:
        return {int(c) for rows in self.rows for c in np.unique(rows[:, 6])}


class CocoEvaluation:
    """The annotations and every model's detections on the annotated images of one validation run."""

    def __init__(self, annotations: CocoAnnotations, models: list[str]):
        self.annotations = annotations
        self.detections = {name: CocoDetections() for name in models}
        self.image_ids: set[int] = set()
        self.unmatched = 0
        self.size_mismatches = 0  # annotated at another size than the file validated: boxes cannot line up

    def count(self, paths: list, sizes: list) -> None:
        """Note which of a batch's images are annotated (call once per batch)."""
        for path, (width, height) in zip(paths, sizes):
            entry = self.annotations.image_for(path)
            if entry is None:
                self.unmatched += 1
                continue
            self.image_ids.add(int(entry["id"]))
            if (entry.get("width"), entry.get("height")) not in ((None, None), (width, height)):
                self.size_mismatches += 1

    def add(self, model: str, detections: list[Detections], paths: list, sizes: list,
            preprocessor: Preprocessor) -> None:
        """One batch of ``model``'s detections (per image, in the model's input pixels)."""
        for found, path, (width, height) in zip(detections, paths, sizes):
            entry = self.annotations.image_for(path)
            if entry is not None:
                self.detections[model].add(int(entry["id"]), found, preprocessor, width, height)

    def evaluate(self, model: str) -> dict:
        return self.detections[model].evaluate(self.annotations)

    def summary(self) -> dict:
        """What report.json's ``dataset.annotations`` says about the ground truth used."""
        boxes = sum(int(a["image_id"]) in self.image_ids for a in self.annotations.data["annotations"])
        labelled = set().union(*(d.categories() for d in self.detections.values()))
        return {"file": str(self.annotations.path), "images": len(self.image_ids),
                "unmatched_images": self.unmatched, "size_mismatches": self.size_mismatches, "boxes": boxes,
                "categories": len(self.annotations.category_ids),
                "labels_outside_categories": len(labelled - self.annotations.category_ids),
                "category_rule": "label == category_id", "matched_by": "file name (basename of images[].file_name)"}
