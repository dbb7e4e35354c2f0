"""report.html renders offline in a real browser (headless Chromium), figures included; writes are atomic."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from swin_trt.validate.run import Options, run_validation, write_report

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)
# The page itself has no script; this one is added to a copy only, to ask the browser whether every
# figure decoded (naturalWidth > 0), which --dump-dom then shows as an attribute.
PROBE = ("<script>addEventListener('load', () => document.body.setAttribute('data-decoded', "
         "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length));</script>")


@pytest.fixture(scope="module")
def report(tmp_path_factory, photo_dir, pico_models):
    models = pico_models
    document = run_validation(Options(str(models["fp32"]), [str(models["rewritten"]), str(models["fp16"])],
                                      data=photo_dir, layer_images=2, progress=False))
    return write_report(document, tmp_path_factory.mktemp("html"))


def _chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    page = tmp_path / "probe.html"
    page.write_text(report["html"].read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    assert dom.count('src="data:image/png;base64,') == 4, dom[:2000]
    assert 'data-decoded="4"' in dom  # every embedded figure decoded in the browser
    assert "Candidates against the reference" in dom and "Which layers hurt" in dom

    shot = tmp_path / "shot.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", report["html"].as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (2000, 1200)
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01  # text and figures, not a blank page


def test_report_json_matches_the_html(report):
    document = json.loads(report["json"].read_text())
    html = report["html"].read_text()
    for entry in document["candidates"]:
        assert f"{entry['cosine']:.6f}" in html
    assert document["candidates"][1]["layers"]["worst"][0] in html


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_readme_main_job_report_shows_its_plots(cli, tmp_path):
    """The README's main job, as written (the demo images are both what it calibrates on and its only data)."""
    from swin_trt.models.demo import demo_images_dir

    outdir = tmp_path / "swin_demo"
    cli("compile", "--arch", "swin_demo", "--precision", "int8", "--calib-data", demo_images_dir(), "-o", outdir)
    page = tmp_path / "probe.html"
    page.write_text((outdir / "report.html").read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    decoded = int(dom.split('data-decoded="', 1)[1].split('"', 1)[0])
    assert decoded >= 2, dom[:2000]
    document = json.loads((outdir / "report.json").read_text())
    overlap = document["dataset"]["calibration_overlap"]
    assert overlap["images"] == 0 and overlap["validation_images"] == 24  # validated on held-out images only


def test_failed_render_leaves_no_partial_report(report, tmp_path, monkeypatch):
    import swin_trt.validate.report_html as report_html

    document = json.loads(report["json"].read_text())

    def broken(document):
        raise RuntimeError("boom")

    monkeypatch.setattr(report_html, "render_html", broken)
    with pytest.raises(RuntimeError):
        write_report(document, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.json"]
