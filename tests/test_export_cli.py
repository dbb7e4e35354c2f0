"""`swin-trt export` end to end, its errors, and every subcommand's --help."""

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from swin_trt.cli.main import _COMMANDS
from swin_trt.export import export_model, seeded_model
from swin_trt.models import create_model


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_export_matches_pytorch_and_writes_sidecar(cli, tmp_path, exporter):
    out = tmp_path / "pico.onnx"
    result = cli("export", "--arch", "swin_pico_test", "--img-size", "64x96", "--dynamic-batch", "4",
                 "--exporter", exporter, "-o", out)
    assert "RANDOM" in result.output and "input  input" in result.output
    onnx.checker.check_model(onnx.load(out), full_check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pico.onnx", "pico.onnx.json"]  # no stray files
    sidecar = json.loads((tmp_path / "pico.onnx.json").read_text())
    assert sidecar["arch"] == "swin_pico_test" and sidecar["img_size"] == [64, 96]
    assert sidecar["weights"] == {"source": "random", "seed": 0}
    assert set(sidecar["preprocessing"]) >= {"resize", "crop", "mean", "std"}
    assert sidecar["dynamic_batch_max"] == 4 and "torch" in sidecar["versions"]
    model = seeded_model("swin_pico_test", sidecar["weights"]["seed"], img_size=(64, 96))[0]
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 96)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.abs(run_onnx(out, x) - expected).max() <= 1e-4


def test_random_weights_come_from_the_seed_alone(tmp_path):
    """The same seed gives the same weights whatever state torch's global generator is in, and export leaves
    that state as it found it."""
    weights = []
    for index, global_seed in enumerate((1, 2)):
        torch.manual_seed(global_seed)
        expected_next = torch.rand(3)
        torch.manual_seed(global_seed)
        export_model("swin_pico_test", tmp_path / f"m{index}.onnx", check=False, seed=5)
        assert torch.equal(torch.rand(3), expected_next)  # the caller's random stream is untouched
        graph = onnx.load(tmp_path / f"m{index}.onnx").graph
        weights.append({i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer})
    assert weights[0].keys() == weights[1].keys()
    assert all(np.array_equal(weights[0][name], weights[1][name]) for name in weights[0])


def test_export_features(cli, tmp_path):
    out = tmp_path / "f.onnx"
    cli("export", "--arch", "swin_pico_test", "--features", "-o", out)
    names = [o.name for o in onnx.load(out).graph.output]
    assert names == ["stage1", "stage2", "stage3", "stage4"]


def test_export_with_checkpoint_records_its_hash(cli, tmp_path):
    weights = tmp_path / "w.pth"
    torch.save(create_model("swin_pico_test")[0].state_dict(), weights)
    out = tmp_path / "m.onnx"
    result = cli("export", "--arch", "swin_pico_test", "--checkpoint", weights, "-o", out)
    assert "RANDOM" not in result.output
    sidecar = json.loads((tmp_path / "m.onnx.json").read_text())
    assert sidecar["weights"]["source"] == "checkpoint" and len(sidecar["weights"]["sha256"]) == 64


@pytest.mark.parametrize("args,message", [
    (["--arch", "swin_nope"], "unknown arch"),
    (["--arch", "swin_pico_test", "--img-size", "65"], "not divisible by the patch size"),
    (["--arch", "swin_pico_test", "--img-size", "abc"], "is not N or HxW"),
    (["--arch", "swin_pico_test", "--checkpoint", "/nonexistent.pth"], "does not exist"),
])
def test_bad_input_exits_2_with_message_and_no_output(cli, tmp_path, args, message):
    out = tmp_path / "bad.onnx"
    result = cli("export", *args, "-o", out, expect=2)
    assert message in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_mismatched_checkpoint_exits_2(cli, tmp_path):
    weights = tmp_path / "w.pth"
    torch.save(create_model("swin_pico_test")[0].state_dict(), weights)
    result = cli("export", "--arch", "swin_nano_test", "--checkpoint", weights, "-o", tmp_path / "x.onnx",
                 expect=2)
    assert "does not match the config" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pth"]


@pytest.mark.parametrize("command", sorted(_COMMANDS))
def test_every_subcommand_help_has_an_example(cli, command):
    result = cli(command, "--help")
    assert "Example" in result.output


def test_top_level_help(cli):
    result = cli("--help")
    assert "export" in result.output and "Pipeline" in result.output


# --- Swin V2: a peer's own checkpoint -> swin-trt export -> ONNX Runtime reproduces the peer ----------------

V2_PEER_MODULE = {"timm": "timm", "torchvision": "torchvision", "hf": "transformers"}


def save_v2_peer(name, size, folder):
    """swinv2_pico_test's shape built and saved by the peer's own code, with random weights."""
    pytest.importorskip(V2_PEER_MODULE[name])
    from swin_trt.models import get_arch
    from swin_trt.models.peers import build_peer, randomize

    peer = randomize(build_peer(name, get_arch("swinv2_pico_test").config.with_(img_size=size)), seed=1)
    if name == "hf":
        peer.save_pretrained(folder / "hf")
        return peer, folder / "hf" / "model.safetensors"
    torch.save(peer.state_dict(), folder / "peer.pth")
    return peer, folder / "peer.pth"


# 64x64 is the default (last stage 2x2, smaller than the window 4); at 72x88 the stages are 18x22, 9x11, 5x6, 3x3.
@pytest.mark.parametrize("name,size,exporter", [(name, size, "torchscript") for name in V2_PEER_MODULE
                                                for size in ("64x64", "72x88")]
                         + [(name, "72x88", "dynamo") for name in V2_PEER_MODULE])
def test_v2_peer_checkpoint_exports_and_reproduces_the_peer(cli, tmp_path, name, size, exporter):
    from swin_trt.models.peers import peer_logits

    size_text, size = size, tuple(int(side) for side in size.split("x"))
    peer, weights = save_v2_peer(name, size, tmp_path)
    out = tmp_path / "v2.onnx"
    cli("export", "--arch", "swinv2_pico_test", "--checkpoint", weights, "--img-size", size_text,
        "--exporter", exporter, "-o", out)
    sidecar = json.loads((tmp_path / "v2.onnx.json").read_text())
    assert sidecar["family"] == "swin_v2" and sidecar["weights"]["format"] == name
    assert sidecar["config"]["convention"] == name
    x = np.random.default_rng(0).standard_normal((1, 3, *size)).astype(np.float32)
    assert np.abs(run_onnx(out, x) - peer_logits(peer, torch.from_numpy(x)).numpy()).max() <= 1e-4
    # The CPB MLP and the clamped logit scale are folded: per block one cosine-attention chain.
    ops = [node.op_type for node in onnx.load(out).graph.node]
    assert not {"Relu", "Sigmoid", "Exp"} & set(ops)
    assert ops.count("Softmax") == 8 and ops.count("ReduceL2") == 16


def test_v2_features_export_reproduces_timm(cli, tmp_path):
    from swin_trt.models.peers import peer_features

    peer, weights = save_v2_peer("timm", (72, 88), tmp_path)
    out = tmp_path / "f.onnx"
    cli("export", "--arch", "swinv2_pico_test", "--checkpoint", weights, "--img-size", "72x88", "--features",
        "-o", out)
    x = np.random.default_rng(0).standard_normal((1, 3, 72, 88)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})
    expected = peer_features("timm", peer, torch.from_numpy(x))
    assert [g.shape for g in got] == [tuple(e.shape) for e in expected]
    assert max(np.abs(g - e.numpy()).max() for g, e in zip(got, expected)) <= 1e-4


def test_v1_checkpoint_for_a_v2_arch_exits_2(cli, tmp_path):
    weights = tmp_path / "w.pth"
    torch.save(create_model("swin_pico_test")[0].state_dict(), weights)
    result = cli("export", "--arch", "swinv2_pico_test", "--checkpoint", weights, "-o", tmp_path / "x.onnx",
                 expect=2)
    assert "is a Swin V1 checkpoint" in result.output and "pass --arch swin_pico_test" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pth"]


def test_dynamo_without_onnxscript_is_a_user_error(tmp_path, monkeypatch):
    """onnxscript is optional (the dynamo exporter's): without it, --exporter dynamo says how to get it."""
    from swin_trt.errors import UserError

    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if it were not installed
    with pytest.raises(UserError, match=r"pip install 'swin-trt\[dynamo\]'"):
        export_model("swin_pico_test", tmp_path / "m.onnx", exporter="dynamo")
    assert list(tmp_path.iterdir()) == []
