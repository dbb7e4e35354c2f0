"""``swin-trt archs``: the named configs."""

import click

from ..models import arch_names, get_arch


@click.command()
def archs():
    """List the named Swin V1 and V2 configs (use one with --arch).

    \b
    Example:
      swin-trt archs
    """
    for name in arch_names():
        spec = get_arch(name)
        c = spec.config
        weights = "bundled weights" if spec.weights else "random weights unless --checkpoint"
        click.echo(f"{name:34s} {spec.family:7s} {f'{c.img_size[0]}x{c.img_size[1]}':7s} window {c.window_size:<2d} "
                   f"embed {c.embed_dim:<3d} "
                   f"depths {'-'.join(map(str, c.depths)):9s} {spec.description} ({weights})")
