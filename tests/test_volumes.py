"""Volumes (MONAI's SwinUNETR, input ``(B, C, D, H, W)``): `rewrite --strict` on a user's own export, and the
stages that read volumes (calibrate, validate) on ``.npy`` and NIfTI files.

The rewrite tests export MONAI's ``SwinUNETR`` (in_channels 1, out_channels 3, feature_size 12, 64³: stage maps
32³, 16³, 8³ in 7³ windows padded and shifted, and 4³ where MONAI shrinks the window to the map with no shift)
with the TorchScript exporter, V1 and ``use_v2=True``; every block's partition and reverse (V2: and attention)
must become plugin nodes and the rewritten graph equal its source (the rewrite's own check: noise, a smooth pattern and a
scan-like phantom volume). They are skipped where MONAI (and einops, which its SwinUNETR imports) is not
installed: ``pip install 'swin-trt[volumes]'``.

The stage tests need no MONAI: a small Conv3d class-map graph at 16³ stands for the segmentation model, so that
the per-voxel agreement and Dice are checked on volumes in a second.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from swin_trt.data.volumes import VolumePreprocessor, list_volumes, read_volume
from swin_trt.errors import UserError

SIZE = 16  # the small graph's volumes: 16³
MONAI_SIZE = 64  # SwinUNETR's smallest cube (its bottleneck instance norm needs more than one voxel at 1/32)
BLOCKS = 8  # SwinUNETR's 4 stages of 2 blocks


# ---- a small volume segmentation graph and its volumes -----------------------------------------------------------

def _conv_model(path: Path, seed: int, size: int = SIZE) -> Path:
    """(N, 1, D, H, W) -> (N, 3, D, H, W) class scores: one Conv3d, weights from ``seed``."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((3, 1, 3, 3, 3)).astype(np.float32), "weight")
    bias = numpy_helper.from_array(np.array([0.0, 0.1, -0.1], np.float32), "bias")
    node = helper.make_node("Conv", ["volume", "weight", "bias"], ["logits"], pads=[1] * 6)
    graph = helper.make_graph([node], "volume_seg",
                              [helper.make_tensor_value_info("volume", TensorProto.FLOAT, ["N", 1, size, size, size])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3, size, size, size])],
                              [weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def _volume(seed: int, size: int = SIZE) -> np.ndarray:
    """A scan-like volume: a few blobs of different intensities over noise."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, size)] * 3, indexing="ij"))
    volume = 0.1 * rng.standard_normal((size,) * 3)
    for intensity in (1.0, 2.0, -1.0):
        centre = rng.uniform(-0.5, 0.5, (3, 1, 1, 1))
        volume += intensity * (np.sqrt(((grid - centre) ** 2).sum(0)) < rng.uniform(0.2, 0.5))
    return volume.astype(np.float32)


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("volumes")
    data = folder / "data"
    (data / "sub").mkdir(parents=True)
    np.save(data / "a.npy", _volume(0)[None])  # (C, D, H, W)
    np.save(data / "sub" / "b.npy", _volume(1))  # (D, H, W): one channel
    np.save(data / "c.npy", _volume(2)[None])
    models = {"reference": _conv_model(folder / "seg.onnx", 0), "perturbed": _conv_model(folder / "other.onnx", 1)}
    models["same"] = folder / "seg_copy.onnx"
    shutil.copy(models["reference"], models["same"])
    return folder, data, models


def _validate(reference, candidates, data, **options):
    from swin_trt.validate.run import ValidateOptions, ValidateStage

    outdir = Path(data).parent / "report"
    options = ValidateOptions(reference=str(reference), candidates=[str(c) for c in candidates], data=data,
                              batch=2, progress=False, layer_images=0, **options)
    return ValidateStage(options, outdir).run()


def test_validate_volumes_per_voxel_agreement_and_dice(volumes):
    folder, data, models = volumes
    document = _validate(models["reference"], [models["same"], models["perturbed"]], data)
    by_model = {entry["name"]: entry for entry in document["candidates"]}
    same, other = (by_model[str(models[k])] for k in ("same", "perturbed"))
    assert same["output_kind"] == "class_map"
    assert same["voxel_agreement"] == 1.0 and same["pixel_agreement"] == 1.0 and same["miou_agreement"] == 1.0
    assert same["dice_agreement"] == [1.0, 1.0, 1.0] and same["mean_dice_agreement"] == 1.0
    assert same["voxels"] == 3 * SIZE ** 3
    assert other["voxel_agreement"] < 0.9 and other["mean_dice_agreement"] < 0.9
    assert all(0 <= d < 1 for d in other["dice_agreement"])
    # Dice per class from the voxels themselves: the candidate's argmax against the reference's
    import onnxruntime as ort

    stack = np.stack([read_volume(p).reshape(1, SIZE, SIZE, SIZE) for p in list_volumes(data)]).astype(np.float32)
    ref, cand = (ort.InferenceSession(str(models[k])).run(None, {"volume": stack})[0].argmax(1)
                 for k in ("reference", "perturbed"))
    dice = [2 * ((ref == c) & (cand == c)).sum() / ((ref == c).sum() + (cand == c).sum()) for c in range(3)]
    np.testing.assert_allclose(other["dice_agreement"], dice, atol=1e-12)
    dataset = document["dataset"]
    assert dataset["images"] == 3 and dataset["preprocessing"]["layout"] == "NCDHW"
    assert dataset["preprocessing"]["volume_shape"] == [1, SIZE, SIZE, SIZE]
    assert (Path(data).parent / "report" / "report.html").is_file()


def test_wrong_shape_volume_is_an_error_naming_both_shapes(volumes, tmp_path):
    folder, data, models = volumes
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "big.npy", np.zeros((1, SIZE, SIZE, 2 * SIZE), np.float32))
    with pytest.raises(UserError) as caught:
        _validate(models["reference"], [models["same"]], bad)
    message = str(caught.value)
    assert f"1x{SIZE}x{SIZE}x{2 * SIZE}" in message and f"?x{SIZE}x{SIZE}x{SIZE}" not in message
    assert f"1x{SIZE}x{SIZE}x{SIZE}" in message and "sliding_window_inference" in message
    with pytest.raises(UserError, match="takes \\(C, D, H, W\\)"):
        VolumePreprocessor((2, SIZE, SIZE, SIZE)).fit(np.zeros((SIZE,) * 3, np.float32), "mono.npy")
    with pytest.raises(UserError, match="no volumes"):
        _validate(models["reference"], [models["same"]], tmp_path / "nothing")
    with pytest.raises(UserError, match="`masks` is for images"):
        _validate(models["reference"], [models["same"]], data, masks=tmp_path)


def test_calibrate_on_volumes(volumes, tmp_path):
    from swin_trt.precision.calibrate_stage import calibrate_file

    folder, data, models = volumes
    cache = calibrate_file(models["reference"], data, tmp_path / "calib.json", num=8, min_images=3, batch=2,
                           progress=False)
    assert cache["data"]["kind"] == "volumes" and cache["data"]["images"] == 3
    assert cache["preprocessing"]["layout"] == "NCDHW" and cache["tensors"]
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "small.npy", np.zeros((8, 8, 8), np.float32))
    with pytest.raises(UserError, match="8x8x8.*crop or resample"):
        calibrate_file(models["reference"], bad, tmp_path / "bad.json", num=4, min_images=1, progress=False)


def test_nifti_volumes_read_channels_first(tmp_path):
    nibabel = pytest.importorskip("nibabel", reason="NIfTI volumes need nibabel (pip install 'swin-trt[volumes]')")
    volume = _volume(3)
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), str(tmp_path / "one.nii.gz"))
    two = np.stack([volume, -volume], axis=-1)  # NIfTI keeps channels last
    nibabel.save(nibabel.Nifti1Image(two, np.eye(4)), str(tmp_path / "two.nii"))
    assert [p.name for p in list_volumes(tmp_path)] == ["one.nii.gz", "two.nii"]
    np.testing.assert_array_equal(read_volume(tmp_path / "one.nii.gz"), volume)
    np.testing.assert_array_equal(read_volume(tmp_path / "two.nii"), np.stack([volume, -volume]))


def test_nifti_without_nibabel_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_nibabel(name, *args, **kwargs):
        if name == "nibabel":
            raise ImportError("No module named 'nibabel'")
        return real_import(name, *args, **kwargs)

    (tmp_path / "scan.nii.gz").write_bytes(b"")
    monkeypatch.setattr(builtins, "__import__", no_nibabel)
    with pytest.raises(UserError, match="needs nibabel: pip install nibabel"):
        read_volume(tmp_path / "scan.nii.gz")


# ---- MONAI SwinUNETR: rewrite --strict ---------------------------------------------------------------------------

def _swin_unetr_export(path: Path, use_v2: bool) -> Path:
    pytest.importorskip("einops", reason="MONAI's SwinUNETR needs einops (pip install 'swin-trt[volumes]')")
    monai = pytest.importorskip("monai.networks.nets", reason="needs MONAI (pip install 'swin-trt[volumes]')")
    import torch

    torch.manual_seed(0)
    model = monai.SwinUNETR(in_channels=1, out_channels=3, feature_size=12, use_v2=use_v2).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(model, (torch.randn(1, 1, *(MONAI_SIZE,) * 3),), str(path), dynamo=False,
                          opset_version=17, input_names=["image"], output_names=["logits"])
    return path


@pytest.fixture(scope="session", params=["v1", "v2"])
def swin_unetr(request, tmp_path_factory):
    return _swin_unetr_export(tmp_path_factory.mktemp("swin_unetr") / f"{request.param}.onnx",
                              request.param == "v2")


def test_swin_unetr_rewrite_strict_equals_source(swin_unetr, tmp_path):
    """V1: partition and reverse; V2 also with ``fuse_attention`` (the attention of every block). Then validate,
    on .npy volumes: every voxel's class and every class's Dice agree with the source."""
    from swin_trt.graph import load_onnx
    from swin_trt.ops import schema
    from swin_trt.surgery.rewrite import rewrite

    fuse = swin_unetr.stem == "v2"
    rewritten, report = rewrite(load_onnx(swin_unetr), strict=True, fuse_attention=fuse)
    expected = {schema.PARTITION: BLOCKS, schema.REVERSE: BLOCKS, **({schema.ATTENTION: BLOCKS} if fuse else {})}
    assert report.counts() == expected
    ops = [n.op_type for n in rewritten.graph.node]
    assert "Pad" not in ops and "ScatterND" not in ops  # pads, rolls and the shift masks went into the plugins
    nodes = {n.name: {a.name: helper.get_attribute_value(a) for a in n.attribute}
             for n in rewritten.graph.node if n.op_type == schema.PARTITION}
    windows = sorted((tuple(a["window_size"]), tuple(a["shift_size"])) for a in nodes.values())
    # 32³, 16³, 8³ maps: 7³ windows, shifted by 3 every other block; 4³: the window shrunk to the map, no shift
    assert windows == sorted([((7, 7, 7), (0, 0, 0)), ((7, 7, 7), (3, 3, 3))] * 3 + [((4, 4, 4), (0, 0, 0))] * 2)
    if fuse:  # 7³: the (13³, heads) table; 4³: MONAI gathers the 7³ index's top-left 64x64, the dense form
        constants = {i.name: list(i.dims) for i in rewritten.graph.initializer}
        biases = sorted(tuple(constants[i][:-1] if len(constants[i]) == 2 else constants[i][1:])
                        for n in rewritten.graph.node if n.op_type == schema.ATTENTION
                        for i in n.input if i in constants and len(constants[i]) in (2, 3))
        assert biases == sorted([(13 ** 3,)] * 6 + [(64, 64)] * 2)
    checked = report.equivalence
    assert checked.contents == 3 and max(checked.max_abs_diff.values()) <= 1e-4
    path, data = tmp_path / "rewritten.onnx", tmp_path / "volumes"
    onnx.save(rewritten, str(path))
    data.mkdir()
    for seed in (0, 1):
        np.save(data / f"scan{seed}.npy", _volume(seed, MONAI_SIZE)[None])
    (entry,) = _validate(swin_unetr, [path], data)["candidates"]
    assert entry["voxels"] == 2 * MONAI_SIZE ** 3 and entry["voxel_agreement"] == 1.0
    assert entry["mean_dice_agreement"] == 1.0 and entry["max_abs_err"] <= 1e-4
