"""Low-latency classification, segmentation and detection of images, video files, cameras and streams
(``swin-trt infer``).

One job per module: ``sources`` opens anything into frames; ``inference_loop`` overlaps decoding/preprocessing
(worker thread) with inference; ``model`` pairs a backend with its sidecar preprocessing and class names;
``classes`` labels, softmax top-k and class shares of a class map; ``detections`` a detector's boxes, scores
and labels, mapped back to the frame's pixels; ``stats`` counters and latency percentiles; ``annotate`` and
``codecs`` write the annotated video (labels, class-map overlays, boxes); ``synth`` makes test videos from real
photos.
"""

from .inference_loop import Pipeline, PipelineOptions, Prediction
from .sources import Frame, Source, open_source

__all__ = ["Frame", "Pipeline", "PipelineOptions", "Prediction", "Source", "open_source"]
