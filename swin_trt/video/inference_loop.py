"""The pipelined loop: a worker thread decodes and resizes frames into a bounded queue while the model runs.

Decoding (FFmpeg), resizing (Pillow) and inference (ONNX Runtime, TensorRT, torch) all release the GIL, so
the two threads overlap and the model rarely waits for a frame. The queue is bounded, so memory stays flat
however long the stream. With ``realtime`` the producer never waits for the model: when the queue is full it
discards the oldest frame (counted in ``dropped``), so latency stays bounded instead of growing; video files
are then decoded at their own frame rate, as a camera would deliver them.

A classifier's frame gets its top-k classes and softmax scores; a segmentation model's (its first output a
class map ``(B, classes, H, W)``) gets the share of the frame's pixels each class takes (``histogram``), its
top-k classes by that share, and, for drawing, the class map itself. A detector's (boxes, scores and labels
among its outputs, :mod:`.detections`) gets its detections at or above ``score_threshold``, boxes in the
frame's own pixels; a detector answers for all the images of a call together, so it runs frame by frame.

A clip model (a Video Swin, input ``(B, 3, T, H, W)``; its preprocessor a :class:`~swin_trt.data.clips.
ClipPreprocessor`) is fed clips: the producer keeps a rolling buffer of the last T frames (:class:`~swin_trt.
data.clips.ClipWindow`, at the source's frame step, ``every``) and queues a clip every ``clip_stride`` frames, so
a result is never more than one stride behind the source. Each prediction is one clip's (first and last frame
index, top-k), its latency measured from the arrival of the clip's last frame. With ``realtime`` the queue drops
whole clips, never frames out of a clip: every clip the model sees is T consecutive frames.

A remote backend (a Triton server) answers later than it is asked: the consumer keeps up to
``backend.max_in_flight(batch)`` batches on their way and writes their predictions in order as they come back,
so one client keeps the server busy. If the server goes away, the run stops there and keeps what it predicted.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ..backends.base import Backend, BackendUnavailable
from ..data.clips import ClipPreprocessor, ClipWindow
from ..preprocess import Preprocessor
from ..errors import UserError
from ..validate.segmentation import class_maps
from .classes import class_shares, default_labels, top_k
from .detections import BOX_SPACE, DEFAULT_SCORE_THRESHOLD, FrameDetections, detection_layout, frame_detections, \
    label_name
from .sources import Frame, Source
from .stats import RunStats

_END = object()  # the producer's last item: the source is exhausted (or failed)


@dataclass
class PipelineOptions:
    batch: int = 1
    every: int = 1  # process every N-th frame of the source
    realtime: bool = False
    max_frames: int | None = None  # stop after this many frames decoded from the source
    topk: int = 5
    keep_images: bool = False  # hand each decoded image to the caller (to draw on it)
    queue_batches: int = 1  # queue depth in batches without realtime: the next batch waits ready
    score_threshold: float = DEFAULT_SCORE_THRESHOLD  # detectors: the detections written and drawn


@dataclass
class Prediction:
    index: int
    timestamp: float | None
    name: str | None
    classes: list[str]
    scores: list[float]  # per class listed: softmax score (classifier) or share of the pixels (segmentation)
    latency_ms: float
    image: Image.Image | None = None
    histogram: dict[str, float] | None = None  # segmentation: pixel share of every class present, largest first
    class_map: np.ndarray | None = None  # segmentation, when images are kept: (H, W) class index per pixel
    detections: FrameDetections | None = None  # a detector: boxes in the frame's pixels (classes: their labels)
    first: int | None = None  # a clip model: the clip's first frame (``index`` is its last)
    clip: int | None = None  # a clip model: the clip's number among those cut from the source (dropped ones too)
    frames: list[Image.Image] | None = None  # a clip model, images kept: the frames since the previous clip

    def to_json(self) -> dict:
        if self.first is not None:  # a clip: its frames and its classes
            record = {"clip": self.clip, "first": self.first, "last": self.index, "timestamp": self.timestamp,
                      "classes": self.classes, "scores": [round(s, 6) for s in self.scores],
                      "latency_ms": round(self.latency_ms, 3)}
            return record
        record = {"index": self.index, "timestamp": self.timestamp}
        if self.name is not None:
            record["name"] = self.name
        if self.detections is not None:
            found = self.detections
            record.update(boxes=[[round(float(v), 2) for v in box] for box in found.boxes], labels=self.classes,
                          label_ids=[int(c) for c in found.class_ids], scores=[round(s, 6) for s in self.scores],
                          box_space=BOX_SPACE, frame_size=list(found.frame_size))
        elif self.histogram is None:
            record.update(classes=self.classes, scores=[round(s, 6) for s in self.scores])
        else:
            record.update(classes=self.classes, shares=[round(s, 6) for s in self.scores],
                          histogram={name: round(share, 6) for name, share in self.histogram.items()})
        record["latency_ms"] = round(self.latency_ms, 3)
        return record

    def caption(self) -> str:
        """What an annotated frame says: the top class and its score, the largest classes' shares, or how many
        detections there are."""
        if self.detections is not None:
            return f"{len(self.detections)} detection{'s' * (len(self.detections) != 1)}"
        if self.histogram is None:
            return f"{self.classes[0]} {self.scores[0]:.2f}"
        return "  ".join(f"{name} {share:.0%}" for name, share in zip(self.classes[:3], self.scores[:3]))


@dataclass
class _Item:
    frame: Frame  # a clip: its last frame
    pixels: np.ndarray  # (H, W, 3) uint8, resized and cropped; a clip (T, H, W, 3)
    size: tuple[int, int]  # the frame's (width, height), which a detector's boxes are mapped back to
    first: int | None = None  # a clip: its first frame's index
    clip: int | None = None  # a clip: its number among the clips cut from the source
    frames: list | None = None  # a clip, images kept: the images of the frames since the previous clip


class Pipeline:
    def __init__(self, source: Source, backend: Backend, preprocessor: Preprocessor,
                 labels: Sequence[str] | None = None, options: PipelineOptions | None = None):
        self.source, self.backend, self.preprocessor = source, backend, preprocessor
        self.labels = list(labels) if labels is not None else None
        self.options = options or PipelineOptions()
        if self.options.batch < 1 or self.options.every < 1 or self.options.topk < 1:
            raise UserError("`batch`, `every` and `topk` must be >= 1")
        self.clips = preprocessor if isinstance(preprocessor, ClipPreprocessor) else None
        if self.clips is not None and source.kind in ("image", "folder"):
            raise UserError(f"the model takes clips of {self.clips.length} frames (B, 3, T, H, W), but the source "
                            f"is {source.description}: pass a video file, a camera or a stream")
        # Still images have no rate to keep up with: realtime only changes timed sources.
        self.realtime = self.options.realtime and (source.live or source.fps is not None)
        self.stats = RunStats(unit="clips" if self.clips is not None else "frames")
        self._producer_preprocess_s = 0.0
        self._error: BaseException | None = None
        self._detections = None  # where a detector's boxes, scores, labels are; False: not a detector

    def run(self, on_prediction: Callable[[Prediction], None]) -> RunStats:
        """Predict every selected frame, calling ``on_prediction`` in order; returns the statistics."""
        batch = self.options.batch
        self._warm_up()
        frames = queue.Queue(maxsize=batch if self.realtime else batch * self.options.queue_batches)
        stop = threading.Event()
        worker = threading.Thread(target=self._produce, args=(frames, stop), name="swin-trt-decode", daemon=True)
        start = time.perf_counter()
        worker.start()
        try:
            self._consume(frames, on_prediction)
        except KeyboardInterrupt:  # Ctrl-C ends a camera or stream run: keep what was predicted
            self.stats.interrupted = True
        except BackendUnavailable as exc:  # a server that went away: keep what was predicted, say why
            self.stats.error = str(exc)
        finally:
            stop.set()  # a failing consumer must not leave the producer blocked on a full queue
            worker.join()
            self.stats.wall_s = time.perf_counter() - start
            self.stats.preprocess_s += self._producer_preprocess_s
            self.stats.decoded, self.stats.corrupt = self.source.decoded, self.source.corrupt
            self.stats.decode_s = self.source.decode_s
        if self._error is not None:
            raise self._error
        return self.stats

    def _warm_up(self) -> None:
        """One batch before the clock starts: lazy allocation is not the first frame's latency."""
        if self.clips is not None:
            shape = self.clips.input_shape(self.options.batch)
        else:
            shape = (self.options.batch, 3, *self.preprocessor.crop)
        self.backend.infer_padded(np.zeros(shape, dtype=np.float32))

    # -- producer (worker thread) -----------------------------------------------------------------------
    def _produce(self, frames: queue.Queue, stop: threading.Event) -> None:
        pace = self.realtime and not self.source.live  # a file: deliver frames at its own frame rate
        origin = None
        window = ClipWindow(self.clips.length, self.clips.stride) if self.clips is not None else None
        since: list = []  # a clip model keeping images: the frames since the last clip
        cut = 0  # clips cut so far
        try:
            for frame in self.source.frames(self.options.every, self.options.max_frames):
                if stop.is_set():
                    break
                if pace and frame.timestamp is not None:
                    if origin is None:
                        origin = (time.perf_counter(), frame.timestamp)
                    delay = origin[0] + (frame.timestamp - origin[1]) - time.perf_counter()
                    if delay > 0:
                        stop.wait(delay)
                    frame.decoded_at = max(frame.decoded_at, time.perf_counter())  # it "arrives" now
                start = time.perf_counter()
                if window is not None:  # a clip model: a clip every `clip_stride` frames, or nothing yet
                    pixels = self.clips.fit(frame.image)
                    self._producer_preprocess_s += time.perf_counter() - start
                    if self.options.keep_images:
                        since.append(frame.image)
                    size = frame.image.size
                    frame.image = None
                    clip = window.push((frame, pixels))
                    if clip is None:
                        continue
                    item = _Item(frame, np.stack([p for _, p in clip]), size, clip[0][0].index, cut,
                                 since if self.options.keep_images else None)
                    since, cut = [], cut + 1
                else:
                    pixels = self.preprocessor.to_uint8(frame.image)
                    self._producer_preprocess_s += time.perf_counter() - start
                    item = _Item(frame, pixels, frame.image.size)
                if not self.options.keep_images:
                    frame.image = None  # the queue holds small crops only
                if self.realtime:
                    self._put_newest(frames, item)
                else:
                    self._put(frames, item, stop)
        except BaseException as exc:  # handed to the consumer's thread, which raises it
            self._error = exc
        finally:
            self._put(frames, _END, stop, force=True)

    def _put_newest(self, frames: queue.Queue, item) -> None:
        while True:
            try:
                frames.put_nowait(item)
                return
            except queue.Full:
                try:
                    frames.get_nowait()
                    self.stats.dropped += 1
                except queue.Empty:
                    pass

    @staticmethod
    def _put(frames: queue.Queue, item, stop: threading.Event, force: bool = False) -> None:
        while True:
            try:
                frames.put(item, timeout=0.1)
                return
            except queue.Full:
                if stop.is_set():
                    if not force:
                        return
                    try:  # the consumer is gone: make room so that the end marker is always delivered
                        frames.get_nowait()
                    except queue.Empty:
                        pass

    # -- consumer (caller's thread) ---------------------------------------------------------------------
    def _consume(self, frames: queue.Queue, on_prediction) -> None:
        depth = max(1, self.backend.max_in_flight(self.options.batch))
        in_flight: collections.deque = collections.deque()  # (items, future), oldest first
        ended = False
        try:
            while not ended:
                items, ended = self._next_batch(frames)
                if items:
                    in_flight.append((items, self._submit(items)))
                while in_flight and (ended or len(in_flight) >= depth):
                    self._finish(*in_flight.popleft(), on_prediction)
        finally:
            for _, future in in_flight:
                future.cancel()

    def _next_batch(self, frames: queue.Queue) -> tuple[list[_Item], bool]:
        """Up to ``batch`` frames; with realtime only those already waiting (never wait to fill a batch)."""
        items: list[_Item] = []
        item = frames.get()
        while item is not _END:
            items.append(item)
            if len(items) == self.options.batch:
                return items, False
            if self.realtime:
                try:
                    item = frames.get_nowait()
                except queue.Empty:
                    return items, False
            else:
                item = frames.get()
        return items, True

    def _submit(self, items: list[_Item]):
        start = time.perf_counter()
        batch = self.preprocessor.normalize(np.stack([item.pixels for item in items]))
        inferred = time.perf_counter()
        future = self.backend.submit(batch)
        self.stats.preprocess_s += inferred - start
        self.stats.infer_s += time.perf_counter() - inferred
        return future

    def _finish(self, items: list[_Item], future, on_prediction) -> None:
        """Wait for one batch's outputs (infer time: the time spent waiting) and hand on its predictions."""
        waited = time.perf_counter()
        outputs = future.result()
        done = time.perf_counter()
        self.stats.infer_s += done - waited
        if self._detector(outputs):
            predictions = self._detected(items, outputs)
        else:
            predictions = self._predictions(outputs[0], self._labels_for(outputs[0]))
        for item, prediction in zip(items, predictions):
            latency = done - item.frame.decoded_at
            self.stats.latency.add(latency)
            self.stats.frames += 1
            frame = item.frame
            prediction.update(index=frame.index, timestamp=frame.timestamp, name=frame.name,
                              latency_ms=latency * 1000, image=frame.image)
            if item.first is not None:
                prediction.update(first=item.first, clip=item.clip, frames=item.frames)
            on_prediction(Prediction(**prediction))

    def _detector(self, outputs: list[np.ndarray]) -> bool:
        """Whether the model is a detector, decided once, on its first outputs."""
        if self._detections is None:
            self._detections = detection_layout(self._output_names(outputs), outputs) or False
        return self._detections is not False

    def _output_names(self, outputs) -> list[str]:
        names = list(getattr(self.backend, "output_names", None) or [])
        return names if len(names) == len(outputs) else [f"output_{i}" for i in range(len(outputs))]

    def _detected(self, items: list[_Item], outputs: list[np.ndarray]):
        """The frame's detections: a detector's outputs belong to the one frame of the call."""
        if len(items) != 1:
            raise UserError(f"a batch of {len(items)} frames: a detector answers for all the images of a call "
                            f"together (boxes (N, 4)), so infer runs it one frame at a time: drop `batch`")
        found = frame_detections(self._detections, self._output_names(outputs), outputs, self.preprocessor,
                                 items[0].size, self.options.score_threshold)
        yield {"classes": [label_name(self.labels, int(c)) for c in found.class_ids],
               "scores": [float(s) for s in found.scores], "detections": found}

    def _predictions(self, scores: np.ndarray, labels: list[str]):
        """Per image: top-k of the logits, or of the pixel shares of a class map (with the map, to draw)."""
        if scores.ndim == 2:
            best, probs = top_k(scores, self.options.topk)
            for classes, values in zip(best.tolist(), probs.tolist()):
                yield {"classes": [labels[c] for c in classes], "scores": values}
            return
        for class_map in class_maps(scores):
            shares = class_shares(class_map, len(labels))
            order = [int(c) for c in np.argsort(-shares, kind="stable") if shares[c] > 0]
            yield {"classes": [labels[c] for c in order[:self.options.topk]],
                   "scores": [float(shares[c]) for c in order[:self.options.topk]],
                   "histogram": {labels[c]: float(shares[c]) for c in order},
                   "class_map": class_map if self.options.keep_images else None}

    def _labels_for(self, scores: np.ndarray) -> list[str]:
        if scores.ndim not in (2, 4):
            raise UserError(f"the model's first output has shape {list(scores.shape)}, neither (batch, classes) nor "
                            f"a class map (batch, classes, H, W): infer needs a classifier or a segmentation model "
                            f"(export without `features`)")
        if self.labels is None:
            self.labels = default_labels(scores.shape[1])
        if len(self.labels) != scores.shape[1]:
            raise UserError(f"{len(self.labels)} labels for a model with {scores.shape[1]} classes: "
                            f"pass `labels` with one name per class")
        return self.labels
