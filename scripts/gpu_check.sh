#!/usr/bin/env bash
# The first run on a CUDA GPU: build, test and benchmark the kernels, write one JSON and one log.
#
# For a machine with a CUDA GPU, PyTorch (CUDA build), numpy, pytest, cmake and nvcc; no TensorRT and no
# network needed (onnx-graphsurgeon, polygraphy and av are not used). In under 8 minutes on an H200:
#   1. builds libswin_trt_capi.so (the kernels' C ABI) for this GPU's architecture, and the TensorRT plugin
#      library and its host test where TensorRT headers are found (TENSORRT_ROOT=<folder with include/>);
#   2. runs the host tests (ctest) and the GPU tests: tests/test_cuda_kernels.py, every kernel against the
#      numpy reference of the op contract, every dtype, padded and shifted maps, batch up to 32, one node's
#      attributes at every stage map of a backbone of any size (the plugins' dynamic height/width), attention
#      in V1 and cosine mode (Swin V2);
#   3. runs benchmarks/bench_kernels.py: partition/reverse bandwidth as a fraction of a device-to-device
#      copy of the same bytes, attention (V1 and cosine) against torch SDPA in FP16 with the same bias and
#      mask, Swin-T and Swin-B shapes at batch 1 and 32, for 224x224 inputs and for 512x640 (a dense input:
#      every stage padded);
#   4. writes gpu_check.json (machine, each step's status and time, test counts, the benchmark's numbers)
#      and gpu_check.log (everything printed) into $OUT, or ./gpu_check/ when OUT is not set.
#
# Exit status: 0 everything passed; 1 a step failed (the JSON says which); 2 something is missing (it says
# what, before anything is built). Environment: OUT, PYTHON (default python3), TENSORRT_ROOT, CUDACXX.
set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${OUT:-$REPO/gpu_check}
PY=${PYTHON:-python3}
BUILD=$REPO/build/gpu-check
mkdir -p "$DEST"
LOG=$DEST/gpu_check.log
JSON=$DEST/gpu_check.json
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
: >"$LOG"
STARTED=$(date +%s)

say() { echo "gpu_check: $*" | tee -a "$LOG"; }

# One step: its output goes to the terminal and the log; its status and seconds to $WORK/steps.
step() {
    local name=$1 limit=$2
    shift 2
    say "== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
    local rc=$?
    echo "$name $rc $((SECONDS - start))" >>"$WORK/steps"
    [ "$rc" = 124 ] && say "$name: stopped after ${limit}s"
    say "$name: exit status $rc"
    return "$rc"
}

# Writes the JSON from what the steps left in $WORK; $1 = status (pass, fail, missing).
write_json() {
    STATUS=$1 STARTED=$STARTED WORK=$WORK JSON=$JSON "$PY" - <<'EOF' 2>&1 | tee -a "$LOG"
import json, os, time, xml.etree.ElementTree as ET
from pathlib import Path

work = Path(os.environ["WORK"])
def text(name):
    path = work / name
    return path.read_text().strip() if path.is_file() else None
def load(name):
    path = work / name
    return json.loads(path.read_text()) if path.is_file() else None

steps = []
for line in (text("steps") or "").splitlines():
    name, rc, seconds = line.split()
    steps.append({"step": name, "exit_status": int(rc), "seconds": int(seconds), "timed_out": rc == "124"})
tests = None
if (work / "junit.xml").is_file():
    suite = ET.parse(work / "junit.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    failed = [f"{case.get('classname')}::{case.get('name')}" for case in suite.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]
    tests = {**counts, "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
             "failed_tests": failed[:50]}
document = {
    "status": os.environ["STATUS"],
    "missing": (text("missing") or "").splitlines() or None,
    "seconds": int(time.time()) - int(os.environ["STARTED"]),
    "machine": load("machine.json"),
    "build": load("build.json"),
    "steps": steps,
    "gpu_tests": tests,
    "bench_kernels": load("kernels.json"),
}
Path(os.environ["JSON"]).write_text(json.dumps(document, indent=2) + "\n")
print(f"gpu_check: wrote {os.environ['JSON']}")
EOF
}

# ---- 1. what is here, and what is missing -----------------------------------------------------------------
: >"$WORK/missing"
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "gpu_check: cannot run: missing $PY (Python 3 with torch, numpy and pytest); set PYTHON=..." | tee -a "$LOG"
    exit 2
fi
"$PY" - "$WORK" <<'EOF' 2>&1 | tee -a "$LOG"
import importlib, json, platform, shutil, subprocess, sys
from pathlib import Path

work = Path(sys.argv[1])
missing, machine = [], {"python": platform.python_version(), "host": platform.node()}
for module in ("numpy", "pytest", "torch"):
    try:
        machine[module] = importlib.import_module(module).__version__
    except Exception as exc:
        missing.append(f"the Python module {module} ({type(exc).__name__}: {exc})")
if "torch" in machine:
    import torch
    machine["torch_cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(0)
        machine.update(gpu=torch.cuda.get_device_name(0), compute_capability=f"{major}.{minor}",
                       cuda_arch=f"{major}{minor}")
    else:
        why = "this PyTorch has no CUDA" if torch.version.cuda is None else "no GPU is visible to it"
        missing.append(f"a CUDA GPU: torch.cuda.is_available() is False ({why}; nvidia-smi "
                       f"{'found' if shutil.which('nvidia-smi') else 'not found'})")
if shutil.which("nvidia-smi"):
    done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,memory.total", "--format=csv,noheader"],
                          capture_output=True, text=True)
    machine["nvidia_smi"] = done.stdout.strip() or done.stderr.strip()
(work / "machine.json").write_text(json.dumps(machine, indent=2))
(work / "missing").write_text("\n".join(missing) + ("\n" if missing else ""))
EOF
NVCC=${CUDACXX:-$(command -v nvcc || true)}
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
[ -z "$NVCC" ] && echo "nvcc, the CUDA compiler (CUDA toolkit; or set CUDACXX)" >>"$WORK/missing"
command -v cmake >/dev/null 2>&1 || echo "cmake >= 3.18" >>"$WORK/missing"
if [ -s "$WORK/missing" ]; then
    say "cannot run on this machine; missing:"
    sed 's/^/  - /' "$WORK/missing" | tee -a "$LOG"
    say "this check needs a CUDA GPU with PyTorch (CUDA), numpy, pytest, cmake and nvcc"
    write_json missing
    exit 2
fi
ARCH=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['cuda_arch'])" "$WORK/machine.json")
say "GPU sm_$ARCH, nvcc $NVCC, writing to $DEST"

# ---- 2. build ----------------------------------------------------------------------------------------------
CONFIGURE=(cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CUDA_ARCHITECTURES=$ARCH"
           "-DCMAKE_CUDA_COMPILER=$NVCC" -DSWIN_TRT_BUILD_EMULATION=OFF -DSWIN_TRT_BUILD_TESTS=ON)
[ -n "${TENSORRT_ROOT:-}" ] && CONFIGURE+=("-DTENSORRT_ROOT=$TENSORRT_ROOT")
FAILED=0
step configure 120 "${CONFIGURE[@]}" || FAILED=1
[ "$FAILED" = 0 ] && { step build 240 cmake --build "$BUILD" -j "$(nproc)" || FAILED=1; }
CAPI=$BUILD/libswin_trt_capi.so
PLUGINS=$BUILD/libswin_trt_plugins.so
"$PY" - "$WORK/build.json" "$ARCH" "$CAPI" "$PLUGINS" "${TENSORRT_ROOT:-}" <<'EOF'
import json, sys
from pathlib import Path
out, arch, capi, plugins, trt = sys.argv[1:]
json.dump({"cuda_arch": arch, "capi": Path(capi).is_file(), "plugins": Path(plugins).is_file(),
           # the library Triton and DeepStream load: built where TENSORRT_ROOT also holds libnvinfer
           "plugins_autoreg": Path(plugins).with_name("libswin_trt_plugins_autoreg.so").is_file(),
           "tensorrt_root": trt or None,
           "plugins_note": None if Path(plugins).is_file() else
           "no TensorRT headers: set TENSORRT_ROOT=<folder with include/NvInfer.h> to build the plugin library"},
          open(out, "w"), indent=2)
EOF
[ -f "$PLUGINS" ] || say "plugin library not built: no TensorRT headers (TENSORRT_ROOT) - the kernels are still checked"

# ---- 3. tests and benchmark --------------------------------------------------------------------------------
if [ "$FAILED" = 0 ]; then
    step ctest 60 ctest --test-dir "$BUILD" --output-on-failure || FAILED=1
    # --noconftest: tests/conftest.py needs click and scikit-image, which these tests do not use.
    (cd "$REPO" && SWIN_TRT_CAPI=$CAPI PYTHONPATH=$REPO PYTHONUNBUFFERED=1 step gpu_tests 180 "$PY" -m pytest \
        --noconftest -p no:cacheprovider -q -rs tests/test_cuda_kernels.py --junitxml="$WORK/junit.xml") || FAILED=1
    # On a GPU machine a skipped kernel test is a failure of this check, not a pass.
    "$PY" -c "import sys, xml.etree.ElementTree as E; s = E.parse(sys.argv[1]).getroot(); s = s if s.tag == 'testsuite' \
else s.find('testsuite'); sys.exit(int(s.get('skipped', 0)) > 0 or int(s.get('tests', 0)) == 0)" "$WORK/junit.xml" \
        || { say "gpu_tests: tests were skipped or none ran on this GPU machine"; FAILED=1; }
    (cd "$REPO" && PYTHONPATH=$REPO PYTHONUNBUFFERED=1 step bench_kernels 240 "$PY" benchmarks/bench_kernels.py \
        --capi "$CAPI" --batches 1,32 --dtypes float16,int8 --img-sizes 224x224,512x640 --modes v1,cosine \
        --out "$WORK/kernels.json") || FAILED=1
fi

if [ "$FAILED" = 0 ]; then
    write_json pass
    say "all steps passed in $(($(date +%s) - STARTED)) s"
    exit 0
fi
write_json fail
say "a step failed (see $JSON and $LOG)"
exit 1
