"""Swin V2 conventions measured with the same weights: each peer (timm, torchvision, transformers) builds
its own model with random weights; our reference loads that state dict under every convention and its
logits are compared with the peer's. With ``--export``, the peer's checkpoint also goes through
``export_model`` with both exporters and ONNX Runtime's logits are compared with the peer's.

Also measures transformers' doubled shift mask (-200 instead of -100): the hf convention with the mask
halved, against the transformers peer.

    python benchmarks/bench_conventions.py --arch swinv2_tiny_window8_256 --out benchmarks/results/conventions_v2.json
    python benchmarks/bench_conventions.py --arch swinv2_nano_test --export --out benchmarks/results/conventions_v2_nano.json
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from swin_trt.export import EXPORTERS, export_model, parse_img_size
from swin_trt.io import write_json
from swin_trt.models import SwinTransformerV2, get_arch
from swin_trt.models.checkpoint import LoadedCheckpoint, apply_state, detect_format, to_reference_layout
from swin_trt.models.peers import PEERS, build_peer, peer_logits, randomize


def ours(config, state) -> SwinTransformerV2:
    fmt = detect_format(state)
    tensors, recomputed = to_reference_layout(state, fmt)
    model = SwinTransformerV2(config).eval()
    apply_state(model, LoadedCheckpoint("peer", "", fmt, tensors, recomputed))
    return model


def max_error(model, x, expected) -> float:
    with torch.no_grad():
        return float((model(x) - expected).abs().max())


def onnx_error(arch, size, state, exporter, x, expected) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        weights, out = Path(tmp) / "peer.pth", Path(tmp) / "model.onnx"
        torch.save(state, weights)
        export_model(arch, out, checkpoint=weights, img_size=size, exporter=exporter, check=False)
        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(None, {"input": x.numpy()})[0]
    return float(np.abs(got - expected.numpy()).max())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="swinv2_tiny_window8_256")
    parser.add_argument("--sizes", nargs="+", default=["256", "256x320", "200x264"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--export", action="store_true", help="also export each peer's checkpoint (both exporters)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/conventions_v2.json"))
    args = parser.parse_args()

    spec = get_arch(args.arch)
    rows = []
    for size_text in args.sizes:
        size = parse_img_size(size_text)
        config = spec.config.with_(img_size=size)
        x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
        for name in PEERS:
            peer = randomize(build_peer(name, config), args.seed)
            expected = peer_logits(peer, x)
            state = peer.state_dict()
            row = {"size": list(size), "peer": name, "peer_logits_max_abs": float(expected.abs().max()),
                   "ours_vs_peer": {convention: max_error(ours(config.with_(convention=convention), state), x,
                                                          expected) for convention in PEERS}}
            if name == "hf":
                model = ours(config.with_(convention="hf"), state)
                for block in model.modules():
                    if getattr(block, "attn_mask", None) is not None:
                        block.attn_mask = block.attn_mask / 2
                row["hf_mask_once_vs_peer"] = max_error(model, x, expected)
            if args.export:
                row["onnxruntime_vs_peer"] = {exporter: onnx_error(spec.name, size, state, exporter, x, expected)
                                              for exporter in EXPORTERS}
            rows.append(row)
            print(f"{size_text:8s} {name:12s} " + "  ".join(f"{c} {e:.2e}" for c, e in row["ours_vs_peer"].items())
                  + "".join(f"  onnx/{k} {v:.2e}" for k, v in row.get("onnxruntime_vs_peer", {}).items())
                  + (f"  hf mask once {row['hf_mask_once_vs_peer']:.2e}" if name == "hf" else ""),
                  flush=True)
    write_json(args.out, {"arch": spec.name, "seed": args.seed, "batch": 1, "rows": rows,
                          "machine": platform.processor() or platform.machine(),
                          "torch": torch.__version__})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
