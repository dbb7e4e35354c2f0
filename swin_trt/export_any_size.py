"""Export swin-trt's reference model for any input size (``swin-trt export --dynamic-size``).

The reference model is built for one input size: its shift masks are buffers computed for that size's
padded grid, and the exporter would store them as constants. For a graph that runs at every size, the
masks must come from the input instead. While exporting, a forward pre-hook on each shifted block computes
its mask from the block input's height and width (the region formula of the op contract, in torch ops on
the traced sizes, so either exporter records the arithmetic, not its values) and the block uses it in place
of the buffer. Padding, rolls and reshapes already follow the traced sizes.

What stays fixed is each block's geometry (window and shift), decided for the export size: a stage that is
not larger than the window shrinks it or drops the shift. So the export size must have every stage larger
than the window; the graph is then right at every size from :func:`min_size` up.
"""

from __future__ import annotations

import contextlib

import torch

from .errors import UserError
from .ops import reference


def stage_grain(config) -> int:
    """Pixels per token of the last stage (patch size times the merges)."""
    return config.patch_size * 2 ** (len(config.depths) - 1)


def min_size(config) -> tuple[int, int]:
    """The smallest input whose last stage is larger than the window in both dims (multiples of the grain)."""
    grain = stage_grain(config)
    return ((config.window_size + 1) * grain,) * 2


def check_export_size(config) -> None:
    """A dynamic-size export must be made where no stage shrinks its window or drops its shift."""
    smallest = min(config.stage_sizes()[-1])
    if smallest <= config.window_size:
        low = min_size(config)
        raise UserError(f"`dynamic_size`: at {config.img_size[0]}x{config.img_size[1]} the last stage is "
                        f"{config.stage_sizes()[-1][0]}x{config.stage_sizes()[-1][1]}, not larger than the window "
                        f"{config.window_size}, so its window shrinks and the graph would be wrong at larger "
                        f"sizes: export at `img_size` {low[0]}x{low[1]} or larger")


def _mask(height, width, window, shift, dtype) -> torch.Tensor:
    """The ``(nW, N, N)`` shift mask of a ``height x width`` map (padded up to the window), from region ids."""
    (wh, ww), (sh, sw) = window, shift
    hp, wp = (height + wh - 1) // wh * wh, (width + ww - 1) // ww * ww

    def regions(size, win, s):
        position = torch.arange(size)
        if s == 0:
            return torch.zeros_like(position)
        return (position >= size - win).long() + (position >= size - s).long()

    region = regions(hp, wh, sh)[:, None] * 3 + regions(wp, ww, sw)[None, :]
    region = region.reshape(hp // wh, wh, wp // ww, ww).permute(0, 2, 1, 3).reshape(-1, wh * ww)
    same = region[:, :, None] == region[:, None, :]
    return torch.where(same, torch.zeros((), dtype=dtype), torch.full((), reference.MASK_VALUE, dtype=dtype))


@contextlib.contextmanager
def masks_from_input_size(model: torch.nn.Module):
    """Within the context, every shifted block of ``model`` computes its mask from its input's size."""
    from .models.swin import SwinBlock

    def hook(block, args):
        x = args[0]  # (B, H, W, C)
        block.attn_mask = _mask(x.shape[1], x.shape[2], block.window_size, block.shift_size, x.dtype)

    blocks = [m for m in model.modules() if isinstance(m, SwinBlock) and m.attn_mask is not None]
    saved = [b.attn_mask for b in blocks]
    handles = [b.register_forward_pre_hook(hook) for b in blocks]
    try:
        yield
    finally:
        for block, handle, mask in zip(blocks, handles, saved):
            handle.remove()
            block.attn_mask = mask
