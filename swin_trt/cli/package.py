"""``swin-trt package``."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UserError


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--triton", "target", flag_value="triton",
              help="A Triton model repository: engine -> tensorrt_plan with its plugin library; ONNX -> its CPU "
                   "twin (plugin ops lowered) for onnxruntime_onnx.")
@click.option("--deepstream", "target", flag_value="deepstream",
              help="A DeepStream Gst-nvinfer bundle: config (custom-lib-path, network-type=1, scaling), labels, "
                   "model, plugin library.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The folder to write: the model repository (--triton) or the bundle (--deepstream).")
@click.option("--name", help="--triton: the model's name in the repository (default: from the file name).")
@click.option("--plugins", type=click.Path(dir_okay=False, path_type=Path),
              help="The plugin library to ship (default: the one the engine was built with, checked by hash).")
@click.option("--max-queue-delay-us", type=click.IntRange(min=0), default=100, show_default=True,
              help="--triton: how long a request may wait for others to join its batch.")
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True,
              help="--triton: model instances per GPU (engine) or on the CPU (ONNX).")
def package(model, target, output, name, plugins, max_queue_delay_us, instances):
    """Write MODEL (.engine or .onnx) as a deployable bundle for Triton or DeepStream.

    \b
    Examples:
      swin-trt package out/model.engine --triton -o triton_repo
      swin-trt package out/model.onnx --triton -o triton_repo --name swin_cpu
      swin-trt export --arch swin_demo --fold-normalization float255 -o out/pixels.onnx   # nvinfer-ready
      swin-trt package out/pixels.engine --deepstream -o ds_bundle
    """
    from ..serving.model_info import describe_model
    from ..serving.serve_repository import model_name_for

    if target is None:
        raise UserError("say which bundle: --triton or --deepstream")
    info = describe_model(model)
    if target == "triton":
        from ..serving.triton_bundle import BundleOptions, write_triton_bundle

        readme = write_triton_bundle(info, output, BundleOptions(name or model_name_for(model), plugins,
                                                                 max_queue_delay_us, instances))
        click.echo(f"wrote Triton model repository {output} (model {name or model_name_for(model)!r}); start it "
                   f"as {readme} says")
    else:
        from ..serving.deepstream import DeepStreamOptions, write_deepstream_bundle

        config = write_deepstream_bundle(info, output, DeepStreamOptions(plugins))
        click.echo(f"wrote DeepStream bundle {output}: nvinfer config-file-path={config}")
