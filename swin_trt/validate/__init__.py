"""Validation: candidates against a reference on real images, and the report a deployment can trust.

compare (stream images through the models) -> metrics (running sums) / latency (timed infer calls) ->
layers (per-layer error attribution for FP16/INT8 graphs) -> gates -> schema / report_html / plots /
summary. run.py strings them together for ``swin-trt validate``.
"""
