"""``swin-trt archs``: the named configs."""

import click

from ..models import arch_names, get_arch


@click.command()
def archs():
    """List the named Swin V1, V2 and Video Swin configs (use one with --arch).

    \b
    Example:
      swin-trt archs
    """
    for name in arch_names():
        spec = get_arch(name)
        c = spec.config
        weights = "bundled weights" if spec.weights else "random weights unless --checkpoint"
        size = "x".join(map(str, getattr(c, "clip_size", c.img_size)))  # a video arch's clip is T x H x W
        window = c.window_size if isinstance(c.window_size, int) else "x".join(map(str, c.window_size))
        click.echo(f"{name:34s} {spec.family:7s} {size:7s} window {str(window):<2s} "
                   f"embed {c.embed_dim:<3d} "
                   f"depths {'-'.join(map(str, c.depths)):9s} {spec.description} ({weights})")
