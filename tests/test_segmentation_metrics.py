"""Segmentation metrics (validate/segmentation.py): confusion matrices, IoU, masks read as their images are
fitted; and the class-map overlay that infer draws (video/annotate.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from swin_trt.preprocess import Preprocessing
from swin_trt.errors import UserError
from swin_trt.validate.segmentation import IGNORE_INDEX, Confusion, MaskSet, SegmentationMetrics, class_maps
from swin_trt.video.annotate import PALETTE, overlay_class_map, palette

TRUTH = np.array([[0, 0, 1, 1], [2, 2, IGNORE_INDEX, 1]])
PREDICTED = np.array([[0, 1, 1, 1], [2, 0, 0, 1]])


def test_confusion_iou_by_hand():
    confusion = Confusion(3)
    confusion.update(TRUTH, PREDICTED)
    assert confusion.matrix.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 1]]  # the ignored pixel is left out
    # IoU = hits / (predicted + true - hits): class 0 1/3, class 1 3/4, class 2 1/2
    np.testing.assert_allclose(confusion.iou(), [1 / 3, 3 / 4, 1 / 2])
    assert confusion.miou() == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert confusion.pixel_accuracy() == pytest.approx(5 / 7)


def test_a_class_nobody_has_does_not_count():
    confusion = Confusion(4)
    confusion.update(TRUTH, PREDICTED)
    assert np.isnan(confusion.iou()[3])
    assert confusion.miou() == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert Confusion(4).miou() is None and Confusion(4).pixel_accuracy() is None


def test_streaming_equals_all_at_once():
    rng = np.random.default_rng(0)
    scores_ref = rng.normal(size=(6, 5, 9, 7)).astype(np.float32)
    scores_cand = scores_ref + rng.normal(scale=0.3, size=scores_ref.shape).astype(np.float32)
    masks = rng.integers(0, 5, size=(6, 9, 7)).astype(np.uint8)
    masks[:, 0] = IGNORE_INDEX
    whole, parts = SegmentationMetrics(5), SegmentationMetrics(5)
    whole.update(scores_ref, scores_cand, masks)
    parts.update(scores_ref[:2], scores_cand[:2], masks[:2])
    parts.update(scores_ref[2:], scores_cand[2:], masks[2:])
    assert whole.result() == parts.result()
    same = SegmentationMetrics(5)
    same.update(scores_ref, scores_ref, masks)
    assert same.result()["pixel_agreement"] == 1.0 and same.result()["miou_agreement"] == 1.0
    result = whole.result(["a", "b", "c", "d", "e"])
    assert 0 < result["pixel_agreement"] < 1 and 0 < result["miou_agreement"] < 1
    assert result["labelled_pixels"] == 6 * 8 * 7 and result["class_names"] == ["a", "b", "c", "d", "e"]
    # pixel agreement is the share of equal argmaxes, counted directly
    assert result["pixel_agreement"] == pytest.approx(float((class_maps(scores_ref) == class_maps(scores_cand)).mean()))


def test_masks_are_fitted_as_their_images():
    """Crop mode: the mask keeps the columns the centre crop keeps (nearest: no blended class index)."""
    mask = Image.fromarray(np.tile((np.arange(200) // 10).astype(np.uint8), (100, 1)), mode="L")  # value = x // 10
    preprocessor = Preprocessing(crop_pct=0.5).at((40, 40))
    fitted = np.asarray(preprocessor.fit_mask(mask))
    assert fitted.shape == (40, 40)
    # shorter side 100 -> 80, width 200 -> 160; the centre 40 columns are 60..100, i.e. x = 75..125 in the mask
    assert fitted.min() == 7 and fitted.max() == 12 and set(np.unique(fitted)) <= set(range(20))
    assert preprocessor.source_box(200, 100) == pytest.approx((75, 25, 125, 75))
    stretched = Preprocessing(resize="stretch").at((40, 40))
    assert np.asarray(stretched.fit_mask(mask)).max() == 19 and stretched.source_box(200, 100) == (0, 0, 200, 100)


def test_mask_set_refuses_what_it_cannot_use(tmp_path):
    images = [tmp_path / "a.jpg", tmp_path / "b.png"]
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.full((8, 8), 2, np.uint8), mode="L").save(masks / "a.png")
    with pytest.raises(UserError, match="no mask for 1 of 2 images .*b.png"):
        MaskSet(masks, images)
    with pytest.raises(UserError, match="not a folder"):
        MaskSet(tmp_path / "nowhere", images)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(masks / "b.png")
    stretch = Preprocessing(resize="stretch").at((4, 4))
    with pytest.raises(UserError, match="RGB, not a single channel"):
        MaskSet(masks, images, classes=3).read(images[1], stretch, (4, 4))
    with pytest.raises(UserError, match="class index 2, but the model has 2 classes"):
        MaskSet(masks, images, classes=2).read(images[0], stretch, (4, 4))
    ignored = np.full((8, 8), IGNORE_INDEX, np.uint8)
    ignored[:4] = 1
    Image.fromarray(ignored, mode="L").save(masks / "b.png")
    read = MaskSet(masks, images, classes=2).read(images[1], stretch, (2, 6))  # another output size: nearest
    assert read.shape == (2, 6) and set(np.unique(read)) == {1, IGNORE_INDEX}


def test_overlay_blends_each_class_in_its_colour():
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    class_map = np.zeros((10, 20), np.uint8)
    class_map[:, :10] = 2
    blended = np.asarray(overlay_class_map(image, class_map, alpha=0.5))
    assert blended.shape == (20, 40, 3)
    np.testing.assert_allclose(blended[:, :20], np.broadcast_to(np.array(PALETTE[2]) / 2, (20, 20, 3)), atol=1)
    np.testing.assert_allclose(blended[:, 20:], np.broadcast_to(np.array(PALETTE[0]) / 2, (20, 20, 3)), atol=1)
    # only the box the model saw is painted
    boxed = np.asarray(overlay_class_map(image, class_map, box=(10, 0, 30, 20), alpha=0.5))
    assert not boxed[:, :10].any() and not boxed[:, 30:].any() and boxed[:, 10:30].any()
    colours = palette(300)
    assert colours.shape == (300, 3) and len({tuple(c) for c in colours[:20]}) == 20
