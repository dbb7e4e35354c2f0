"""Checkpoint files: every layout and container loads safely; every bad file is a clear error."""

import pickle
import re

import pytest
import torch
from safetensors.torch import save_file

from swin_trt.errors import UserError
from swin_trt.models import create_model
from swin_trt.models.checkpoint import load_checkpoint

ARCH = "swin_pico_test"


@pytest.fixture(scope="module")
def reference_state():
    torch.manual_seed(0)
    model = create_model(ARCH)[0]
    return model, {k: v.clone() for k, v in model.state_dict().items()}


def microsoft_layout(state):
    """The original repo's layout: downsample at the end of a stage, head.weight, wrapped in 'model'."""
    out = {}
    for key, value in state.items():
        key = re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", key)
        out[key.replace("head.fc.", "head.")] = value
    out["layers.0.blocks.1.attn_mask"] = torch.zeros(1)  # stored buffers are recomputed, not loaded
    return {"model": out, "epoch": torch.tensor(300)}


def logits(model):
    with torch.no_grad():
        return model(torch.ones(1, 3, 64, 64))


@pytest.mark.parametrize("layout", ["timm_pth", "timm_safetensors", "microsoft"])
def test_layouts_load_to_identical_models(tmp_path, reference_state, layout):
    model, state = reference_state
    if layout == "timm_safetensors":
        path = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    elif layout == "microsoft":
        path = tmp_path / "w.pth"
        torch.save(microsoft_layout(state), path)
    else:
        path = tmp_path / "w.pth"
        torch.save({"state_dict": state}, path)
    loaded, _, report = create_model(ARCH, path)
    assert report.format == ("microsoft" if layout == "microsoft" else "timm")
    assert torch.equal(logits(loaded), logits(model))
    if layout == "microsoft":
        assert report.recomputed == ["layers.0.blocks.1.attn_mask"]


def test_missing_file():
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint("/nonexistent/w.pth")


def test_truncated_file(tmp_path, reference_state):
    path = tmp_path / "w.pth"
    torch.save(reference_state[1], path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UserError, match="truncated"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("hello, I am a text file\n")
    with pytest.raises(UserError, match="checkpoint"):
        load_checkpoint(path)


class Payload:
    def __reduce__(self):
        return (print, ("this ran code",))


def test_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"x": Payload()}, handle)
    with pytest.raises(UserError, match="never runs code"):
        load_checkpoint(path)
    assert "this ran code" not in capsys.readouterr().out


def test_mismatch_names_keys_and_shapes(tmp_path, reference_state):
    state = dict(reference_state[1])
    del state["norm.weight"]
    state["extra.weight"] = torch.zeros(1)
    state["head.fc.bias"] = torch.zeros(7)
    path = tmp_path / "w.pth"
    torch.save(state, path)
    with pytest.raises(UserError) as info:
        create_model(ARCH, path, num_classes=5)
    message = str(info.value)
    assert "norm.weight" in message and "extra.weight" in message and "head.fc.bias" in message


def test_unknown_layout(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"encoder.weight": torch.zeros(2)}, path)
    with pytest.raises(UserError, match="not a Swin V1 or V2 layout"):
        load_checkpoint(path)


def test_num_classes_follows_a_fine_tuned_head(tmp_path):
    model = create_model(ARCH, num_classes=3)[0]
    path = tmp_path / "w.pth"
    torch.save(model.state_dict(), path)
    assert create_model(ARCH, path)[0].config.num_classes == 3


# --- Swin V2 ------------------------------------------------------------------------------------------------

V2_ARCH = "swinv2_pico_test"


@pytest.fixture(scope="module")
def v2_state():
    from swin_trt.models.peers import randomize

    model = create_model(V2_ARCH)[0]
    randomize(model, seed=2).eval()  # eval after the new weights: refolds the CPB tables
    return model, {k: v.clone() for k, v in model.state_dict().items()}


def microsoft_v2_layout(state):
    """Microsoft's V2 release: downsample at a stage's end, head.*, and its persistent buffers."""
    out = microsoft_layout(state)["model"]
    out["layers.0.blocks.0.attn.relative_coords_table"] = torch.zeros(1, 7, 7, 2)
    out["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(16, 16, dtype=torch.long)
    return {"model": out}


@pytest.mark.parametrize("layout", ["timm_pth", "timm_safetensors", "microsoft"])
def test_v2_layouts_load_to_identical_models(tmp_path, v2_state, layout):
    model, state = v2_state
    path = tmp_path / ("w.safetensors" if layout == "timm_safetensors" else "w.pth")
    if layout == "timm_safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save(microsoft_v2_layout(state) if layout == "microsoft" else state, path)
    loaded, spec, report = create_model(V2_ARCH, path)
    assert spec.family == "swin_v2" and load_checkpoint(path).family == "swin_v2"
    assert report.format == ("microsoft" if layout == "microsoft" else "timm")
    assert torch.equal(logits(loaded), logits(model))
    if layout == "microsoft":
        assert {"layers.0.blocks.0.attn.relative_coords_table", "layers.0.blocks.1.attn_mask"} <= set(report.recomputed)


def test_hugging_face_v2_safetensors_file(tmp_path):
    """save_pretrained's model.safetensors, read by path: detected as a Hugging Face V2 checkpoint."""
    pytest.importorskip("transformers")
    from swin_trt.models.peers import build_peer, randomize

    config = create_model(V2_ARCH)[0].config
    peer = randomize(build_peer("hf", config), seed=1)
    peer.save_pretrained(tmp_path / "hf")
    model, _, report = create_model(V2_ARCH, tmp_path / "hf" / "model.safetensors")
    assert report.format == "hf" and model.config.convention == "hf"
    with torch.no_grad():
        expected = peer(torch.ones(1, 3, 64, 64)).logits
    assert (logits(model) - expected).abs().max().item() <= 1e-4


@pytest.mark.parametrize("checkpoint_arch,arch,family,advice", [
    ("swinv2_pico_test", "swin_pico_test", "Swin V2", "`arch` swinv2_pico_test"),
    ("swin_pico_test", "swinv2_pico_test", "Swin V1", "`arch` swin_pico_test"),
])
def test_v1_v2_mix_up_says_the_family_and_the_arch_to_pass(tmp_path, checkpoint_arch, arch, family, advice):
    path = tmp_path / "w.pth"
    torch.save(create_model(checkpoint_arch)[0].state_dict(), path)
    with pytest.raises(UserError) as info:
        create_model(arch, path)
    message = str(info.value)
    assert f"is a {family} checkpoint" in message and f"`arch` {arch} is a" in message and advice in message


def test_v2_mix_up_lists_every_window_the_weights_fit(tmp_path):
    """A V2 checkpoint does not fix its window (the position bias is continuous): every matching arch."""
    from swin_trt.models.checkpoint import LoadedCheckpoint
    from swin_trt.models.registry import family_mismatch, get_arch

    state = create_model("swinv2_tiny_window8_256")[0].state_dict()
    error = family_mismatch(LoadedCheckpoint(tmp_path / "w.pth", "", "timm", state), get_arch("swin_tiny"))
    assert "`arch` swinv2_tiny_window8_256 or `arch` swinv2_tiny_window16_256" in str(error)
    assert "do not fix the window" in str(error)


def test_v2_mismatch_names_keys_and_shapes(tmp_path, v2_state):
    state = dict(v2_state[1])
    del state["layers.1.blocks.0.attn.logit_scale"]
    state["layers.0.blocks.0.attn.k_bias"] = torch.zeros(16)
    state["layers.0.blocks.0.attn.cpb_mlp.2.weight"] = torch.zeros(3, 512)
    path = tmp_path / "w.pth"
    torch.save(state, path)
    with pytest.raises(UserError) as info:
        create_model(V2_ARCH, path)
    message = str(info.value)
    assert "missing 1: layers.1.blocks.0.attn.logit_scale" in message
    assert "unexpected 1: layers.0.blocks.0.attn.k_bias" in message
    assert "layers.0.blocks.0.attn.cpb_mlp.2.weight (checkpoint (3, 512), model (1, 512))" in message
