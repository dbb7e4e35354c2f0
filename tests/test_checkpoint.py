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
