"""The op contract in code (swin_trt.ops.reference) against the implementations it describes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from swin_trt.ops import reference

from conftest import attention_atol


def torch_partition(x, window, shift, pad_first):
    """What timm (pad_first=False) and torchvision (pad_first=True) do, written with torch ops."""
    _, h, w, c = x.shape
    wh, ww = window
    pad = (0, 0, 0, (ww - w % ww) % ww, 0, (wh - h % wh) % wh)
    roll = lambda t: torch.roll(t, (-shift[0], -shift[1]), (1, 2)) if any(shift) else t
    x = roll(F.pad(x, pad)) if pad_first else F.pad(roll(x), pad)
    _, hp, wp, _ = x.shape
    x = x.view(-1, hp // wh, wh, wp // ww, ww, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wh * ww, c)


CASES = [((14, 14), (7, 7), (3, 3)), ((10, 13), (7, 7), (3, 3)), ((8, 10), (4, 5), (2, 0)),
         ((7, 7), (7, 7), (0, 0)), ((5, 9), (3, 4), (1, 3))]


@pytest.mark.parametrize("size,window,shift", CASES)
@pytest.mark.parametrize("pad_first", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8])
def test_partition_matches_roll_pad_partition(size, window, shift, pad_first, dtype):
    rng = np.random.default_rng(0)
    x = rng.integers(-100, 100, size=(2, *size, 3)).astype(dtype)
    ours = reference.window_partition(x, window, shift, pad_first)
    expected = torch_partition(torch.from_numpy(x.astype(np.float32)), window, shift, pad_first).numpy()
    assert ours.dtype == dtype
    np.testing.assert_array_equal(ours.astype(np.float32), expected)


@pytest.mark.parametrize("size,window,shift", CASES)
@pytest.mark.parametrize("pad_first", [True, False])
def test_reverse_inverts_partition(size, window, shift, pad_first):
    x = np.random.default_rng(1).standard_normal((3, *size, 4)).astype(np.float32)
    windows = reference.window_partition(x, window, shift, pad_first)
    back = reference.window_reverse(windows, window, shift, pad_first, *size)
    np.testing.assert_array_equal(back, x)


def test_orders_differ_when_window_does_not_divide():
    x = np.random.default_rng(2).standard_normal((1, 10, 10, 2)).astype(np.float32)
    a = reference.window_partition(x, (7, 7), (3, 3), True)
    b = reference.window_partition(x, (7, 7), (3, 3), False)
    assert not np.array_equal(a, b)


def timm_style_mask(hp, wp, window, shift):
    img = torch.zeros(1, hp, wp, 1)
    count = 0
    for h in ((0, -window[0]), (-window[0], -shift[0]), (-shift[0], None)):
        for w in ((0, -window[1]), (-window[1], -shift[1]), (-shift[1], None)):
            img[:, h[0]:h[1], w[0]:w[1], :] = count
            count += 1
    windows = torch_partition(img, window, (0, 0), True).squeeze(-1)
    mask = windows.unsqueeze(1) - windows.unsqueeze(2)
    return mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0).numpy()


@pytest.mark.parametrize("grid,window,shift", [((14, 14), (7, 7), (3, 3)), ((14, 21), (7, 7), (3, 3)),
                                               ((8, 15), (4, 5), (2, 0)), ((12, 12), (4, 4), (0, 2))])
def test_mask_matches_slice_formula_of_timm_and_torchvision(grid, window, shift):
    np.testing.assert_array_equal(reference.attention_mask(window, shift, *grid), timm_style_mask(*grid, window, shift))


def test_no_shift_no_mask():
    assert reference.attention_mask((7, 7), (0, 0), 14, 14) is None


def test_relative_position_index_matches_original_formula():
    wh, ww = 3, 4
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    rel[:, :, 0] += wh - 1
    rel[:, :, 1] += ww - 1
    rel[:, :, 0] *= 2 * ww - 1
    np.testing.assert_array_equal(reference.relative_position_index((wh, ww)), rel.sum(-1).numpy())


def test_attention_matches_torch():
    rng = np.random.default_rng(3)
    heads, hd, window, shift, grid = 2, 8, (4, 4), (2, 2), (8, 12)
    n_windows = (grid[0] // 4) * (grid[1] // 4)
    qkv = rng.standard_normal((2 * n_windows, 16, 3 * heads * hd)).astype(np.float32)
    table = rng.standard_normal((49, heads)).astype(np.float32)
    ours = reference.window_attention(qkv, table, heads, window, shift, *grid, hd ** -0.5)
    t = torch.from_numpy(qkv).reshape(-1, 16, 3, heads, hd).permute(2, 0, 3, 1, 4)
    bias = torch.from_numpy(reference.relative_position_bias(table, window))
    mask = torch.from_numpy(reference.attention_mask(window, shift, *grid))
    attn = (t[0] * hd ** -0.5) @ t[1].transpose(-1, -2) + bias
    attn = (attn.view(2, n_windows, heads, 16, 16) + mask[None, :, None]).view(-1, heads, 16, 16)
    expected = (attn.softmax(-1) @ t[2]).transpose(1, 2).reshape(-1, 16, heads * hd).numpy()
    attrs = dict(num_heads=heads, scale=hd ** -0.5)
    np.testing.assert_allclose(ours, expected, atol=attention_atol(qkv, table, attrs), rtol=0)


def test_bad_attributes_are_named():
    with pytest.raises(ValueError, match="shift_size"):
        reference.window_partition(np.zeros((1, 7, 7, 1), np.float32), (7, 7), (7, 0), True)
