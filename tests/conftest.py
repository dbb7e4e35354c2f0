"""Shared fixtures: tiny configs, real photos from scikit-image, a CLI runner, and the pico test model exported
once per session in the forms several modules need (an export costs tens of seconds on a loaded CI machine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper
from tolerances import EPS32, attention_atol, rounding_atol, sum_atol  # noqa: F401  (the tests import them here)

TINY = dict(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=7, num_classes=10)


def finishes_within(seconds: float, call):
    """``call()``'s result (its exception is raised again), failing the test if it has not returned within
    ``seconds``: a guard against hangs, set far above the expected time so that a loaded machine cannot trip it
    (a test that measures how fast something is belongs in benchmarks/, not here)."""
    import threading

    outcome: dict = {}

    def target():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still running after {seconds} s: it hangs"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def load_script(path: Path, name: str):
    """A script of scripts/ or benchmarks/ (not a package) as a module, without writing __pycache__ there."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


def readme_precision_table(heading: str) -> dict[str, list]:
    """The FP32/FP16/INT8 rows of the README's table under ``## <heading>``: label -> its cells as numbers
    (``12.3%`` -> 0.123; empty -> None)."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for label, cells in re.findall(r"^\| (FP32[^|]*|FP16[^|]*|INT8[^|]*) \|(.*)\|$", section, re.M):
        rows[label.strip()] = [float(c.strip().rstrip("%")) / (100 if c.strip().endswith("%") else 1)
                               if c.strip() else None for c in cells.split("|")]
    return rows


# ---- the demo trainers' mosaics (scripts/train_dense_demo.py, scripts/train_detection_demo.py) ----------------

class BoxRecorder:
    """A CropSampler (scripts/train_demo.py) that remembers every box it hands out, ``("train" | "val", box)``."""

    def __init__(self, sampler):
        self.sampler, self.boxes = sampler, []
        self.photo, self.val_cells = sampler.photo, sampler.val_cells

    def train_box(self, rng):
        box = self.sampler.train_box(rng)
        self.boxes.append(("train", box))
        return box

    def train_crop(self, rng, size):
        return np.asarray(self.photo.resize((size[1], size[0]), box=self.train_box(rng)))

    def val_box(self, rng, cell):
        box = self.sampler.val_box(rng, cell)
        self.boxes.append(("val", box))
        return box


def assert_split_kept(recorders: list[BoxRecorder], is_training_box) -> None:
    """Every training box keeps clear of the held-out cells, every validation box lies inside one, and both
    kinds were drawn."""
    for recorder in recorders:
        width, height = recorder.photo.size
        for kind, box in recorder.boxes:
            if kind == "train":
                assert is_training_box(box, width, height)
            else:
                assert any(c[0] <= box[0] < box[2] <= c[2] and c[1] <= box[1] < box[3] <= c[3]
                           for c in recorder.val_cells)
    assert {kind for r in recorders for kind, _ in r.boxes} == {"train", "val"}


def quick_runs(script: Path, tmp_path: Path) -> list[Path]:
    """``script --quick --out`` run twice, into ``tmp_path/one`` and ``tmp_path/two``; each must succeed."""
    import subprocess
    import sys

    runs = []
    for name in ("one", "two"):
        out = tmp_path / name
        run = subprocess.run([sys.executable, str(script), "--quick", "--out", str(out)], capture_output=True,
                             text=True, timeout=300, cwd=script.parents[1])
        assert run.returncode == 0, run.stdout + run.stderr
        runs.append(out)
    return runs


def assert_quick_refused(script: Path, bundled_before: dict[str, str]) -> None:
    """``script --quick`` without ``--out`` is refused (it would overwrite the bundled model), and the bundled
    files (name -> sha256, taken before any run) are as they were."""
    import subprocess
    import sys

    from swin_trt.io import sha256_file
    from swin_trt.models.demo import assets_dir

    refused = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=120,
                             cwd=script.parents[1])
    assert refused.returncode == 2 and "--quick" in refused.stderr
    assert {n: sha256_file(assets_dir() / n) for n in bundled_before} == bundled_before


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """Real photos that scikit-image ships, written as files (a folder source for the CLI)."""
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field"):
        image = np.asarray(getattr(data, name)())
        Image.fromarray(image).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="session")
def cli():
    from swin_trt.cli import main

    def invoke(*args, expect=0):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == expect, f"exit {result.exit_code} != {expect}:\n{result.output}"
        return result

    return invoke


@pytest.fixture(scope="session")
def crops_dir(tmp_path_factory, photo_dir) -> Path:
    """24 real-photo crops (4 corners of each photo): enough images to calibrate INT8 on."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("crops")
    for path in sorted(photo_dir.iterdir()):
        image = Image.open(path).convert("RGB")
        w, h = image.size
        for i, (x, y) in enumerate(((0, 0), (w // 2, 0), (0, h // 2), (w // 2, h // 2))):
            image.crop((x, y, x + w // 2, y + h // 2)).save(folder / f"{path.stem}_{i}.png")
    return folder


@pytest.fixture(scope="session")
def pico_dynamic(tmp_path_factory) -> Path:
    """The 64 px random-weight test Swin with its sidecar, with a dynamic batch (up to 8)."""
    from swin_trt.export import export_model

    path = tmp_path_factory.mktemp("pico_dynamic") / "pico.onnx"
    export_model("swin_pico_test", path, dynamic_batch=8, check=False)
    return path


@pytest.fixture(scope="session")
def pico_rewritten(tmp_path_factory) -> Path:
    """swin_pico_test exported and rewritten (plugin nodes), with both sidecars."""
    from swin_trt.export import export_model
    from swin_trt.surgery.rewrite_stage import rewrite_file

    folder = tmp_path_factory.mktemp("precision_pico")
    export_model("swin_pico_test", folder / "pico.onnx", check=False)
    rewrite_file(folder / "pico.onnx", folder / "pico.rw.onnx", fuse_attention=True)  # every plugin family
    return folder / "pico.rw.onnx"


@pytest.fixture(scope="session")
def pico_models(tmp_path_factory) -> dict:
    """The pico model as fp32, rewritten, rewritten+fp16 and rewritten+int8 (paths; only fp32 has a sidecar).
    The FP16 and INT8 graphs are made here, not by `swin-trt quantize`: validate is tested on its own."""
    from swin_trt.export import export_model
    from swin_trt.surgery.rewrite import rewrite

    folder = tmp_path_factory.mktemp("pico")
    paths = {"fp32": folder / "pico.onnx", "rewritten": folder / "pico.rw.onnx",
             "fp16": folder / "pico.rw.fp16.onnx", "int8": folder / "pico.rw.int8.onnx"}
    export_model("swin_pico_test", paths["fp32"], check=False)
    rewritten, _ = rewrite(onnx.load(paths["fp32"]), fuse_attention=True)
    onnx.save(rewritten, paths["rewritten"])
    onnx.save(fp16_graph(rewritten), paths["fp16"])
    onnx.save(int8_graph(rewritten), paths["int8"])
    return paths


# ---- self-made FP16 and INT8 graphs (validate's tests must not depend on `swin-trt quantize`) -----------

WEIGHT_OPS = {"MatMul", "Gemm", "Conv"}
ROUNDED_OPS = {"MatMul", "Gemm", "Conv", "LayerNormalization", "Softmax", "SwinWindowAttention"}


def _with_nodes_after(model: onnx.ModelProto, extra: dict[str, list]) -> None:
    """Insert ``extra[node name]`` right after each node: keeps the graph topologically sorted."""
    nodes = []
    for node in model.graph.node:
        nodes.append(node)
        nodes.extend(extra.get(node.name, []))
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def fp16_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """FP16 as a deployment sees it, runnable by ONNX Runtime's CPU kernels: weights stored as float16, and
    every compute output rounded to float16 and back under its original name (so tensor names match)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    weights = {n.input[i] for n in graph.node if n.op_type in WEIGHT_OPS for i in range(1, len(n.input))}
    casts = []
    for init in list(graph.initializer):
        if init.name in weights and init.data_type == TensorProto.FLOAT:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{init.name}__fp16")
            graph.initializer.remove(init)
            graph.initializer.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                          name=f"{init.name}__cast"))
    extra = {}
    for node in graph.node:
        if node.op_type in ROUNDED_OPS:
            out = node.output[0]
            node.output[0] = f"{out}__raw"
            extra[node.name] = [
                helper.make_node("Cast", [f"{out}__raw"], [f"{out}__h"], to=TensorProto.FLOAT16, name=f"{out}__to16"),
                helper.make_node("Cast", [f"{out}__h"], [out], to=TensorProto.FLOAT, name=f"{out}__to32")]
    _with_nodes_after(model, extra)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def int8_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """INT8 weights through QuantizeLinear/DequantizeLinear (symmetric, per tensor), as Q/DQ graphs carry them."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    extra = []
    for node in graph.node:
        if node.op_type in WEIGHT_OPS and len(node.input) > 1 and node.input[1] in inits:
            weight = numpy_helper.to_array(inits[node.input[1]])
            name = node.input[1]
            scale = numpy_helper.from_array(np.array(max(np.abs(weight).max(), 1e-8) / 127, np.float32), f"{name}__s")
            zero = numpy_helper.from_array(np.array(0, np.int8), f"{name}__z")
            graph.initializer.extend([scale, zero])
            extra += [helper.make_node("QuantizeLinear", [name, scale.name, zero.name], [f"{name}__q"],
                                       name=f"{name}__Q"),
                      helper.make_node("DequantizeLinear", [f"{name}__q", scale.name, zero.name], [f"{name}__dq"],
                                       name=f"{name}__DQ")]
            node.input[1] = f"{name}__dq"
    nodes = extra + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


# Graph-surgery helpers shared by test_surgery, test_surgery_v2 and test_dense_surgery.
def export_peer(model, size, exporter, dynamic, path):
    """``torch.onnx.export`` of someone's model as a user would (input ``input``, output ``logits``), loaded back."""
    import warnings

    import torch

    x = torch.randn(2, 3, *size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            shapes = {"x": {0: torch.export.Dim("batch", min=1, max=8)}} if dynamic else None
            program = torch.onnx.export(model.eval(), (x,), dynamo=True, opset_version=18, verbose=False,
                                        dynamic_shapes=shapes, input_names=["input"], output_names=["logits"])
            onnx.save_model(program.model_proto, str(path))
        else:
            axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None
            torch.onnx.export(model.eval(), (x,), str(path), dynamo=False, opset_version=17,
                              input_names=["input"], output_names=["logits"], dynamic_axes=axes)
    return onnx.load(str(path))


def photo_batch(photo_dir, size, count):
    """``count`` preprocessed photos of ``photo_dir`` at ``size`` (repeated when there are fewer)."""
    from swin_trt.data.images import list_images, open_rgb
    from swin_trt.preprocess import Preprocessor

    pre = Preprocessor(size)
    images = [pre(open_rgb(item.path)) for item in list_images(photo_dir)]
    return np.stack((images * 2)[:count])


def run_first(session, x):
    """The first output of an ONNX Runtime session on ``x`` (fed to its one input)."""
    return session.run(None, {session.get_inputs()[0].name: x})[0]


# ---- detectors on a Swin backbone, built and exported as a user would (torchvision, random weights) ----------

DETECTOR_SIZE = 320  # the size issue 23 reported on; the exports are plain torch.onnx.export at batch 1


def swin_fpn_detector(kind: str, size: int = DETECTOR_SIZE, num_classes: int = 5):
    """A torchvision detector (``fcos``, ``faster_rcnn``, ``retinanet``, ``mask_rcnn``) on torchvision's Swin-T
    features (NHWC stages 1/3/5/7, permuted to NCHW) and a FeaturePyramidNetwork; boxes/scores/labels out.

    Score thresholds are 0 so that random weights still give a full set of detections to compare."""
    from collections import OrderedDict

    import torch
    import torchvision
    from torch import nn
    from torchvision.models import detection
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import FeaturePyramidNetwork
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

    class SwinFPN(nn.Module):
        def __init__(self, extra, channels=64):
            super().__init__()
            self.body = torchvision.models.swin_t(weights=None).features
            self.fpn = FeaturePyramidNetwork([96, 192, 384, 768], channels, extra_blocks=extra)
            self.out_channels = channels

        def forward(self, x):
            maps = OrderedDict()
            for index, layer in enumerate(self.body):
                x = layer(x)
                if index in (1, 3, 5, 7):
                    maps[str(len(maps))] = x.permute(0, 3, 1, 2)
            return self.fpn(maps)

    class Detections(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, images):
            found = self.model(images)[0]
            return found["boxes"], found["scores"], found["labels"]

    torch.manual_seed(0)
    sizes = dict(min_size=size, max_size=size)
    if kind in ("fcos", "retinanet"):
        anchors = AnchorGenerator(((16,), (32,), (64,), (128,), (256,), (512,)), ((1.0,),) * 6) if kind == "fcos" \
            else AnchorGenerator(tuple((s, s * 1.26) for s in (16, 32, 64, 128, 256, 512)), ((0.5, 1.0, 2.0),) * 6)
        build = detection.FCOS if kind == "fcos" else detection.RetinaNet
        model = build(SwinFPN(LastLevelP6P7(64, 64)), num_classes=num_classes, anchor_generator=anchors,
                      score_thresh=0.0, **sizes)
    else:
        anchors = AnchorGenerator(((16,), (32,), (64,), (128,), (256,)), ((0.5, 1.0, 2.0),) * 5)
        build = detection.FasterRCNN if kind == "faster_rcnn" else detection.MaskRCNN
        model = build(SwinFPN(LastLevelMaxPool()), num_classes=num_classes, rpn_anchor_generator=anchors,
                      box_score_thresh=0.0, **sizes)
    return Detections(model.eval())


def export_detector(kind: str, path: Path, size: int = DETECTOR_SIZE) -> Path:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(swin_fpn_detector(kind, size), (torch.rand(1, 3, size, size),), str(path), dynamo=False,
                          opset_version=17, input_names=["images"], output_names=["boxes", "scores", "labels"])
    return path


@pytest.fixture(scope="session")
def detector_onnx(tmp_path_factory):
    """``detector_onnx(kind)``: the path of that torchvision detector's export, made once per session."""
    folder = tmp_path_factory.mktemp("detectors")
    made = {}

    def get(kind: str) -> Path:
        if kind not in made:
            made[kind] = export_detector(kind, folder / f"{kind}.onnx")
        return made[kind]
    return get


# ---- the kernels' C ABI on the CPU emulator, built once per session --------------------------------------------

def cuda_include() -> Path | None:
    """The CUDA headers (cuda_fp16.h) the emulated kernels compile against: no nvcc or GPU is needed."""
    import os
    import shutil

    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(Path(nvcc).resolve().parent.parent))
    candidates.append("/usr/local/cuda")
    for root in filter(None, candidates):
        if (Path(root) / "include" / "cuda_fp16.h").is_file():
            return Path(root) / "include"
    return None


def _current_emulated(path: Path):
    """The library at ``path`` if it is an emulated build of this source's C ABI version, else None."""
    import ctypes

    from swin_trt import plugin_library

    lib = ctypes.CDLL(str(path))
    current = lib.swin_trt_capi_version() == plugin_library.CAPI_VERSION and lib.swin_trt_capi_is_emulated() == 1
    return lib if current else None


@pytest.fixture(scope="session")
def capi_emu(tmp_path_factory):
    """``libswin_trt_capi_emu``: the kernels' real source run by the CPU emulator, through their C ABI (host
    pointers). A current build found where swin_trt looks (``$SWIN_TRT_CAPI``, ``build/``), else compiled once
    per session from the two files CMake's target compiles (a C++ compiler and the CUDA headers suffice)."""
    import ctypes
    import shutil
    import subprocess

    from swin_trt import plugin_library
    from swin_trt.errors import UserError

    try:
        lib = _current_emulated(plugin_library.find_capi_library(emulated=True))
    except (UserError, OSError):
        lib = None
    if lib is None:
        compiler = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
        include = cuda_include()
        if compiler is None or include is None:
            pytest.skip("the emulated kernels need a C++ compiler and the CUDA headers (cuda_fp16.h)")
        repo, path = Path(__file__).resolve().parent.parent, tmp_path_factory.mktemp("capi_emu") / "capi_emu.so"
        common = repo / "plugins" / "common"
        built = subprocess.run([compiler, "-std=c++17", "-O2", "-fPIC", "-shared", "-DSWIN_TRT_EMULATION",
                                f"-I{common}", "-isystem", str(include),
                                str(repo / "plugins" / "tests" / "emulated_kernels.cpp"), str(common / "swin_capi.cpp"),
                                "-o", str(path)], capture_output=True, text=True, timeout=900)
        assert built.returncode == 0, built.stderr[-6000:]
        lib = _current_emulated(path)
        assert lib is not None, f"{path}: built from this source, yet not C ABI {plugin_library.CAPI_VERSION}"
    lib.swin_trt_capi_last_error.restype = ctypes.c_char_p
    return lib
