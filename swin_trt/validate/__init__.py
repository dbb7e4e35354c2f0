"""Validation: candidates against a reference on real images, and the report a deployment can trust.

compare (stream images through the models, laid out by layout: which outputs have a batch axis) -> metrics
(running sums) / segmentation (class maps) / detection and coco (a detector's boxes, scores and labels, told
apart by swin_trt.data.detection_outputs: agreement with the reference, mAP by pycocotools) / latency (timed infer calls) -> layers
(per-layer error attribution for FP16/INT8 graphs) -> gates -> schema / report_html / plots / summary.
run.py strings them together for ``swin-trt validate``.
"""
