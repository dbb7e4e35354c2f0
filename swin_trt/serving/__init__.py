"""Serving at scale: NVIDIA's Triton Inference Server runs swin-trt models; bundles for Triton and DeepStream.

* :mod:`.server`: the ``tritonserver`` binary that PyPI's ``nvidia-pytriton`` ships, started and stopped.
* :mod:`.serve_repository` and :mod:`.triton_model`: the Python-backend model repository that ``swin-trt
  serve`` writes, whose ``model.py`` runs swin-trt's own backend (ONNX Runtime, or TensorRT with its plugins).
* :mod:`.model_info`: what a model file takes and gives (ONNX graph or engine manifest), read once for all.
* :mod:`swin_trt.triton_config` (below every backend: the Triton client reads it too): Triton's
  ``config.pbtxt``, written through Triton's own protobuf schema.
* :mod:`.triton_bundle` and :mod:`.deepstream`: ``swin-trt package --triton`` / ``--deepstream``.

The client side is a backend like the others: :mod:`swin_trt.backends.triton_client`.
"""
