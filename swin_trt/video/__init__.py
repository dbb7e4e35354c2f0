"""Low-latency classification and segmentation of images, video files, cameras and streams (``swin-trt infer``).

One job per module: ``sources`` opens anything into frames; ``inference_loop`` overlaps decoding/preprocessing
(worker thread) with inference; ``model`` pairs a backend with its sidecar preprocessing and class names;
``classes`` labels, softmax top-k and class shares of a class map; ``stats`` counters and latency
percentiles; ``annotate`` and ``codecs`` write the annotated video (labels, class-map overlays); ``synth``
makes test videos from real photos.
"""

from .inference_loop import Pipeline, PipelineOptions, Prediction
from .sources import Frame, Source, open_source

__all__ = ["Frame", "Pipeline", "PipelineOptions", "Prediction", "Source", "open_source"]
