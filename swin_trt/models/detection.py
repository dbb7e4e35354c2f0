"""An object detector on the reference Swin: its stage maps through torchvision's FPN and FCOS head.

:class:`SwinDetector` is the reference :class:`~.swin.SwinTransformer` in features mode (the same weights, keys
and window ops, so export, rewrite and quantize treat its backbone as any Swin) inside torchvision's
:class:`~torchvision.models.detection.FCOS`:

* the stage maps at strides 8 and 16 go through a :class:`~torchvision.ops.FeaturePyramidNetwork` of
  ``FPN_CHANNELS`` channels, plus a max-pooled level at stride 32 (three levels, ``ANCHOR_SIZES``);
* an :class:`~torchvision.models.detection.fcos.FCOSHead` with ``HEAD_CONVS`` conv + GroupNorm layers per
  branch predicts per location the class scores, the box (distances to its four sides) and the centerness;
* torchvision's post-processing: scores over ``SCORE_THRESH``, the ``TOPK_CANDIDATES`` best per level, the
  boxes decoded, class-wise NMS at ``NMS_THRESH``, the ``DETECTIONS_PER_IMG`` best.

Why FCOS: it is anchor-free and one stage (one location, one box; no anchor shapes or proposal stage to
tune), has few hyperparameters, and its export holds exactly the data-dependent shapes a detector brings to a
deployment (a score threshold through NonZero, TopK with a computed k, NonMaxSuppression, a variable number
of boxes), in a small graph. Faster R-CNN would add RoI pooling and a second stage; RetinaNet needs anchor
shapes; DETR needs far more training than a CPU can give.

Input and output: like torchvision's detectors exported at batch 1, the forward takes ``(1, 3, H, W)`` RGB in
0..1 (``PREPROCESSING``: pixels / 255, the whole image stretched to ``img_size``) and normalises inside with
ImageNet's mean and std (what the backbone was trained with); it returns ``boxes (N, 4)`` (x1, y1, x2, y2 in
input pixels), ``scores (N,)`` and ``labels (N,)`` (int64 class indices into ``config.class_names``),
best first. With ``features=True`` it returns the backbone's stage maps of the same 0..1 input (normalised as
the detector normalises it); training uses :meth:`SwinDetector.losses`.

State-dict keys: the backbone's, as timm names them (``patch_embed``, ``layers``), and torchvision's FCOS
under ``detector.*`` (``detector.backbone.fpn``, ``detector.head``). There is no classifier (``head``) and no
final norm: the checkpoint loads through the same checkpoint import as any timm-layout Swin.

torchvision is needed by this model only: it is imported when a detector is built, and its absence is an
error naming the extra to install (``swin-trt[detection]``).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from PIL import Image
from torch import nn

from ..preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from ..errors import UserError
from .swin import SwinConfig, SwinTransformer

# The graph takes pixels / 255 and normalises inside (torchvision's GeneralizedRCNNTransform), so the
# client's recipe is the `unit` preset with the whole image stretched to the input size.
PREPROCESSING = Preprocessing(crop_pct=1.0, interpolation="bilinear", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                              resize="stretch")
FPN_CHANNELS = 64
FPN_STAGES = (1, 2)  # the stages at strides 8 and 16; stride 4 (stage 0) would quadruple the head's cost
ANCHOR_SIZES = ((8,), (16,), (32,))  # one per level = its stride: FCOS sizes its regression ranges from them
HEAD_CONVS = 2  # torchvision's default is 4; two suffice for a dozen textures and halve the head's cost
# Post-processing: torchvision's FCOS defaults. At 0.2 the number of boxes varies from image to image (7 to 89 on
# the bundled mosaics), so the graph's data-dependent count is exercised; at 0.05 every image filled the cap.
# The mAP is the same at both (0.424).
SCORE_THRESH = 0.2
NMS_THRESH = 0.6
DETECTIONS_PER_IMG = 100
TOPK_CANDIDATES = 1000


def require_torchvision() -> None:
    """A :class:`UserError` saying how to install torchvision where it is missing."""
    try:
        import torchvision  # noqa: F401
    except ImportError:
        raise UserError("the detection models (swin_demo_det) need torchvision: pip install 'swin-trt[detection]'"
                        ) from None


class _StageMapsFPN(nn.Module):
    """FCOS's backbone: the Swin's stage maps (computed by the detector that owns this module) through an FPN.

    It does not own the Swin: ``stage_maps`` is the owner's method, kept out of the module tree so the
    backbone's weights appear once in the state dict, under the Swin's own (timm) keys."""

    def __init__(self, stage_maps, in_channels: list[int]):
        super().__init__()
        from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

        self.__dict__["stage_maps"] = stage_maps  # a plain attribute: not a submodule
        self.fpn = FeaturePyramidNetwork(in_channels, FPN_CHANNELS, extra_blocks=LastLevelMaxPool())
        self.out_channels = FPN_CHANNELS  # what FCOS reads to size its head

    def forward(self, x: torch.Tensor) -> OrderedDict:
        maps = self.stage_maps(x)
        return self.fpn(OrderedDict((str(i), maps[stage]) for i, stage in enumerate(FPN_STAGES)))


class SwinDetector(SwinTransformer):
    """Detections ``(boxes, scores, labels)`` of one image; ``features=True``: the stage maps."""

    task = "detection"

    def __init__(self, config: SwinConfig, features: bool = False):
        require_torchvision()
        from torchvision.models.detection import FCOS
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.fcos import FCOSHead

        super().__init__(config, features=features)
        if len(config.depths) <= max(FPN_STAGES):
            raise ValueError(f"a SwinDetector needs {max(FPN_STAGES) + 1} stages or more, not {len(config.depths)}")
        del self.norm, self.head  # the classifier's; a detector has its own head
        widths = [config.embed_dim * 2 ** stage for stage in FPN_STAGES]
        height, width = config.img_size
        self.detector = FCOS(
            _StageMapsFPN(self.stage_maps, widths), num_classes=config.num_classes,
            # The Swin is built for exactly img_size: torchvision's transform must neither resize (its target
            # size is the input's) nor pad to a multiple of 32.
            min_size=min(height, width), max_size=max(height, width), size_divisible=1,
            image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD),
            anchor_generator=AnchorGenerator(ANCHOR_SIZES, ((1.0,),) * len(ANCHOR_SIZES)),
            head=FCOSHead(FPN_CHANNELS, 1, config.num_classes, num_convs=HEAD_CONVS),
            score_thresh=SCORE_THRESH, nms_thresh=NMS_THRESH, detections_per_img=DETECTIONS_PER_IMG,
            topk_candidates=TOPK_CANDIDATES)

    def forward(self, x: torch.Tensor):
        if self.features:  # the backbone's maps of the same 0..1 input the detector takes
            return self.stage_maps(self.detector.transform.normalize(x))
        if self.training:
            raise RuntimeError("SwinDetector.forward is inference; train with .losses(images, targets)")
        if x.shape[0] != 1:  # each image finds its own number of boxes: a batch has no single tensor form
            raise ValueError(f"a SwinDetector's forward takes one image (batch 1), not {x.shape[0]}: "
                             f"detect() takes a batch")
        found = self.detect(x)[0]
        return found["boxes"], found["scores"], found["labels"]

    def detect(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """``{"boxes", "scores", "labels"}`` of each of ``(B, 3, H, W)`` images in 0..1 (torchvision's form)."""
        return self.detector(list(images))

    def losses(self, images: torch.Tensor, targets: list[dict]) -> dict[str, torch.Tensor]:
        """FCOS's training losses (classification, bbox_regression, bbox_ctrness) of ``(B, 3, H, W)`` images in
        0..1 and their targets (``boxes`` (n, 4) x1y1x2y2 float, ``labels`` (n,) int64)."""
        return self.detector(list(images), targets)


def head_summary() -> dict:
    """What the detection head is and does, for the model's JSON and the export sidecar."""
    return {"type": "fcos", "library": "torchvision", "fpn_stages": list(FPN_STAGES), "fpn_channels": FPN_CHANNELS,
            "anchor_sizes": [size for (size,) in ANCHOR_SIZES], "head_convs": HEAD_CONVS,
            "score_thresh": SCORE_THRESH, "nms_thresh": NMS_THRESH, "detections_per_img": DETECTIONS_PER_IMG,
            "topk_candidates": TOPK_CANDIDATES,
            "normalizes_inside": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
            "outputs": {"boxes": "(N, 4) x1, y1, x2, y2 in input pixels", "scores": "(N,) best first",
                        "labels": "(N,) int64 class index"}}


def check_image(size: tuple[int, int]) -> torch.Tensor:
    """``(1, 3, H, W)`` in 0..1 to check an export on: the first bundled held-out mosaic stretched to ``size``. A
    trained detector finds nothing in noise, and a check that compares no detections checks nothing; before the
    demo is trained (no mosaics yet) it is uniform noise."""
    from .demo import demo_det_images_dir

    mosaics = sorted(demo_det_images_dir().glob("*.png"))
    if not mosaics:
        return torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    with Image.open(mosaics[0]) as image:
        return torch.from_numpy(PREPROCESSING.at(size)(image.convert("RGB")))[None]
