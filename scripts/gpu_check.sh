#!/usr/bin/env bash
# The first run on a CUDA GPU: build, test and benchmark the kernels and the plugin library; every result is
# written into $OUT as soon as it exists, so that a run cut short (a borrowed machine's limit, TERM, INT,
# even KILL) keeps everything it finished.
#
# For a machine with a CUDA GPU, PyTorch (CUDA build), numpy, pytest, cmake and nvcc; no TensorRT library and no
# network needed. Steps and their limits (seconds; the sum, 450, plus the probe fits in 8 minutes on an H100,
# so that a borrowed machine's time leaves room for a rerun):
#   configure      40  cmake for this GPU's architecture (kernels, C ABI; with TensorRT headers the plugin
#                      library, its host test and the device driver)
#   build         150  cmake --build -j$(nproc)
#   ctest          30  the host tests (index math, the plugin library through its interfaces)
#   plugin_device  30  plugins/tests/plugin_device_driver.cpp: every plugin object's enqueue on device buffers
#                      (created through getCreators, configured, enqueued, compared with the brute-force
#                      model); needs TensorRT headers (TENSORRT_ROOT), not libnvinfer
#   gpu_tests      80  tests/test_cuda_kernels.py and the tensor-core attention kernel's GPU cases: every kernel
#                      against the numpy reference of the contract
#   bench_kernels 120  benchmarks/bench_kernels.py: attention checked against a float32 reference, then timed
#                      against torch SDPA (backend recorded) and FlexAttention (bias and shift mask computed in
#                      score_mod); partition/reverse bandwidth as a fraction of a device-to-device copy of the
#                      same bytes; Swin-T and Swin-B stage maps at 224x224 and 1024x1024 (which leave the L2);
#                      one Swin-T block fused vs unfused (--fused: checked equal, then timed)
# A step's limit is also cut to what is left of the whole run's budget (SWIN_GPU_CHECK_BUDGET, default 460 s).
#
# Written into $OUT (default ./gpu_check/), each file as soon as it is complete (written aside, then renamed):
#   gpu_check.log              everything printed, as it is printed
#   gpu_check.json             the summary: machine, build, each step, test counts, device-driver and benchmark
#                              results; rewritten after every step ("status": "running"), at the end ("pass",
#                              "fail", "missing") and by the TERM/INT trap ("interrupted")
#   gpu_check.d/NN-<step>.json one per step as it finishes: status (pass, fail, timeout, skipped, interrupted),
#                              exit status, seconds, limit; gpu_check.d/NN-<step>.log its output
#   gpu_check.d/               machine.json, build.json, junit.xml, plugin_device.json, kernels.json (the
#                              benchmark rewrites it after each measured row)
# Nothing is ever deleted. TensorRT headers: TENSORRT_ROOT=<folder with include/NvInfer.h>, or a folder
# tensorrt-headers/ beside this checkout's scripts/ (fetched, never committed: plugins/README.md says how).
#
# Exit status: 0 every step passed; 1 a step failed (the JSON says which); 2 something is missing (it says what,
# before anything is built); 130/143 stopped by INT/TERM. Environment: OUT, PYTHON (default python3),
# TENSORRT_ROOT, CUDACXX, SWIN_GPU_CHECK_STEPS (a comma or space list of the steps above, in order; default all),
# SWIN_GPU_CHECK_BUDGET, SWIN_GPU_CHECK_BUILD (the build folder, default build/gpu-check),
# SWIN_GPU_CHECK_LIMIT_SCALE (an integer: every limit and the budget times it, for a slower machine).
# Options: --no-gpu-ok: run the selected steps even where the probe finds something missing (a CPU machine:
# configure, build and ctest still mean something). Test hooks (tests/test_gpu_check.py): the steps
# selftest_ok, selftest_fail (exit 3) and selftest_sleep_<seconds> need nothing and do nothing else.
set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEST=${OUT:-$REPO/gpu_check}
PY=${PYTHON:-python3}
BUILD=${SWIN_GPU_CHECK_BUILD:-$REPO/build/gpu-check}
SCALE=${SWIN_GPU_CHECK_LIMIT_SCALE:-1} # a slower machine (a Jetson, a CPU-only check): every limit times this
[[ $SCALE =~ ^[1-9][0-9]*$ ]] || SCALE=1
BUDGET=${SWIN_GPU_CHECK_BUDGET:-$((460 * SCALE))}
ALL_STEPS="configure build ctest plugin_device gpu_tests bench_kernels"
# Each step's limit in seconds on an H100 (16 cores): their sum, 450, plus the probe (~10 s) fits 8 minutes.
declare -A LIMIT=([configure]=40 [build]=150 [ctest]=30 [plugin_device]=30 [gpu_tests]=80 [bench_kernels]=120)
NO_GPU_OK=0
for arg in "$@"; do
    case $arg in
    --no-gpu-ok) NO_GPU_OK=1 ;;
    -h | --help)
        sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "gpu_check: unknown argument $arg (see --help)" >&2
        exit 2
        ;;
    esac
done

mkdir -p "$DEST/gpu_check.d" || exit 2
D=$DEST/gpu_check.d
LOG=$DEST/gpu_check.log
JSON=$DEST/gpu_check.json
: >"$LOG"
STARTED=$(date +%s)
DEADLINE=$((STARTED + BUDGET))
cd "$REPO" || exit 2

say() { echo "gpu_check: $*" | tee -a "$LOG"; }

json_str() { # a JSON string of $1
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/ }
    printf '"%s"' "$s"
}

# Writes $1 atomically from stdin (a reader never sees half a file).
write_file() {
    cat >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"
}

# One step's JSON: id name status exit_status seconds limit [detail]
write_step_json() {
    local id=$1 name=$2 status=$3 rc=$4 seconds=$5 limit=$6 detail=${7:-}
    {
        printf '{\n  "step": %s,\n  "index": %d,\n  "status": %s,\n' "$(json_str "$name")" "$((10#${id%%-*}))" \
            "$(json_str "$status")"
        printf '  "exit_status": %s,\n  "seconds": %s,\n  "limit_s": %s,\n  "timed_out": %s,\n' "${rc:-null}" \
            "$seconds" "$limit" "$([ "$status" = timeout ] && echo true || echo false)"
        printf '  "log": %s,\n  "detail": %s\n}\n' "$(json_str "gpu_check.d/$id.log")" \
            "$([ -n "$detail" ] && json_str "$detail" || echo null)"
    } | write_file "$D/$id.json"
}

# The summary from what is in $D; $1 = status (running, pass, fail, missing, interrupted).
write_summary() {
    local status=$1
    if STATUS=$status STARTED=$STARTED D=$D JSON=$JSON BUDGET=$BUDGET timeout 30 "$PY" - <<'EOF' 2>>"$LOG"; then
import json, os, time, xml.etree.ElementTree as ET
from pathlib import Path

d = Path(os.environ["D"])
def load(name):
    try:
        return json.loads((d / name).read_text())
    except (OSError, ValueError) as exc:
        return None if not (d / name).exists() else {"unreadable": f"{type(exc).__name__}: {exc}"}
def text(name):
    path = d / name
    return path.read_text().strip() if path.is_file() else ""

steps = [load(p.name) for p in sorted(d.glob("[0-9][0-9]-*.json"))]
tests = None
try:
    suite = ET.parse(d / "junit.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    failed = [f"{case.get('classname')}::{case.get('name')}" for case in suite.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]
    tests = {**counts, "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
             "failed_tests": failed[:50]}
except (OSError, ET.ParseError, AttributeError):
    pass
device = load("plugin_device.json")
if isinstance(device, dict) and "cases" in device:
    device = {**{k: v for k, v in device.items() if k != "cases"}, "cases": len(device["cases"]),
              "failed_cases": [c for c in device["cases"] if not c.get("ok")][:50]}
document = {
    "status": os.environ["STATUS"],
    "missing": text("missing").splitlines() or None,
    "seconds": int(time.time()) - int(os.environ["STARTED"]),
    "budget_s": int(os.environ["BUDGET"]),
    "machine": load("machine.json"),
    "build": load("build.json"),
    "steps": steps,
    "gpu_tests": tests,
    "plugin_device": device,
    "bench_kernels": load("kernels.json"),
    "results": "gpu_check.d/",
}
path = Path(os.environ["JSON"])
tmp = path.with_name(path.name + f".tmp.{os.getpid()}")
tmp.write_text(json.dumps(document, indent=2) + "\n")
tmp.replace(path)
EOF
        return 0
    fi
    # No Python (or it failed): a summary that says so, still valid JSON.
    printf '{\n  "status": %s,\n  "summary_error": "the Python summary failed (see gpu_check.log); the steps are in gpu_check.d/",\n  "results": "gpu_check.d/"\n}\n' \
        "$(json_str "$status")" | write_file "$JSON"
}

CURRENT_ID=""
CURRENT_NAME=""
CURRENT_LIMIT=0
STEP_START=0
STEP_PID=""

on_signal() {
    local name=$1 code=$2
    trap '' TERM INT
    say "received SIG$name${CURRENT_NAME:+ during step $CURRENT_NAME}: stopping; every finished result stays in $DEST"
    if [ -n "$STEP_PID" ]; then
        kill -TERM "$STEP_PID" 2>/dev/null
        local i
        for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
            kill -0 "$STEP_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$STEP_PID" 2>/dev/null
        write_step_json "$CURRENT_ID" "$CURRENT_NAME" interrupted "$code" "$(($(date +%s) - STEP_START))" \
            "$CURRENT_LIMIT" "stopped by SIG$name"
    fi
    write_summary interrupted
    exit "$code"
}
trap 'on_signal TERM 143' TERM
trap 'on_signal INT 130' INT

STEP_NO=0
# run_step NAME BUDGET FUNCTION: runs the exported shell function under `timeout` (its output to the terminal,
# the log and the step's own log), then writes the step's JSON and the summary. Returns the step's status.
run_step() {
    local name=$1 budget=$2 fn=$3
    STEP_NO=$((STEP_NO + 1))
    local id
    id=$(printf '%02d-%s' "$STEP_NO" "$name")
    local left=$((DEADLINE - $(date +%s)))
    local limit=$((budget * SCALE))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 5 ]; then
        say "$name: skipped: the run's budget (${BUDGET}s) is spent"
        write_step_json "$id" "$name" skipped "" 0 "$limit" "the run's budget (${BUDGET}s) is spent"
        write_summary running
        return 1
    fi
    say "== $name (limit ${limit}s)"
    CURRENT_ID=$id CURRENT_NAME=$name CURRENT_LIMIT=$limit STEP_START=$(date +%s)
    export STEP_DETAIL=$D/$id.detail # where a step may explain itself
    timeout -k 5 "$limit" bash -c "$fn" > >(tee -a "$LOG" "$D/$id.log") 2>&1 &
    STEP_PID=$!
    wait "$STEP_PID"
    local rc=$?
    STEP_PID=""
    local seconds=$(($(date +%s) - STEP_START))
    local status=pass detail=""
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        status=timeout
        detail="stopped after ${limit}s"
    elif [ "$rc" != 0 ]; then
        status=fail
    fi
    if [ -s "$STEP_DETAIL" ]; then # e.g. "skipped: no TensorRT headers"
        detail=$(cat "$STEP_DETAIL")
        [ "$rc" = 0 ] && grep -q '^skipped' "$STEP_DETAIL" && status=skipped
    fi
    sleep 0.05 # let tee write the last lines before the step counts as done
    write_step_json "$id" "$name" "$status" "$rc" "$seconds" "$limit" "$detail"
    CURRENT_ID="" CURRENT_NAME=""
    say "$name: $status (exit status $rc, ${seconds}s)"
    write_summary running
    [ "$rc" = 0 ]
}

skip_step() { # NAME WHY: a step that cannot run because an earlier one failed
    STEP_NO=$((STEP_NO + 1))
    local id
    id=$(printf '%02d-%s' "$STEP_NO" "$1")
    say "$1: skipped: $2"
    write_step_json "$id" "$1" skipped "" 0 0 "skipped: $2"
    write_summary running
}

# ---- 1. which steps, and what they need -----------------------------------------------------------------
STEPS=$(echo "${SWIN_GPU_CHECK_STEPS:-$ALL_STEPS}" | tr ',' ' ')
NEEDS_GPU=0
for s in $STEPS; do
    case $s in
    configure | build | ctest | plugin_device | gpu_tests | bench_kernels) NEEDS_GPU=1 ;;
    selftest_ok | selftest_fail) ;;
    selftest_sleep_*) [[ ${s#selftest_sleep_} =~ ^[0-9]+$ ]] || { say "unknown step $s"; exit 2; } ;;
    *)
        say "unknown step $s (steps: $ALL_STEPS)"
        exit 2
        ;;
    esac
done

: >"$D/missing"
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "gpu_check: cannot run: missing $PY (Python 3 with torch, numpy and pytest); set PYTHON=..." | tee -a "$LOG"
    printf '{\n  "status": "missing",\n  "missing": [%s],\n  "steps": [],\n  "build": null\n}\n' \
        "$(json_str "$PY (Python 3)")" | write_file "$JSON"
    exit 2
fi
if [ "$NEEDS_GPU" = 1 ]; then
    "$PY" - "$D" <<'EOF' 2>&1 | tee -a "$LOG"
import importlib, json, platform, shutil, subprocess, sys
from pathlib import Path

d = Path(sys.argv[1])
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
    done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                          capture_output=True, text=True)
    machine["nvidia_smi"] = done.stdout.strip() or done.stderr.strip()
(d / "machine.json").write_text(json.dumps(machine, indent=2))
(d / "missing").write_text("\n".join(missing) + ("\n" if missing else ""))
EOF
    NVCC=${CUDACXX:-$(command -v nvcc || true)}
    [ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
    [ -z "$NVCC" ] && echo "nvcc, the CUDA compiler (CUDA toolkit; or set CUDACXX)" >>"$D/missing"
    CMAKE_VERSION=$(cmake --version 2>/dev/null | sed -n 's/^cmake version \([0-9][0-9.]*\).*/\1/p')
    [ -z "$CMAKE_VERSION" ] && echo "cmake >= 3.18" >>"$D/missing"
    if [ -s "$D/missing" ]; then
        say "cannot run on this machine; missing:"
        sed 's/^/  - /' "$D/missing" | tee -a "$LOG"
        say "this check needs a CUDA GPU with PyTorch (CUDA), numpy, pytest, cmake and nvcc"
        if [ "$NO_GPU_OK" = 0 ]; then
            write_summary missing
            exit 2
        fi
        say "--no-gpu-ok: running the selected steps anyway"
    fi
fi

# ---- 2. the steps ------------------------------------------------------------------------------------------
ARCH=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1])).get('cuda_arch', '90'))" "$D/machine.json" \
    2>/dev/null || echo 90)
if [ -z "${TENSORRT_ROOT:-}" ] && [ -f "$REPO/tensorrt-headers/include/NvInfer.h" ]; then
    TENSORRT_ROOT=$REPO/tensorrt-headers
fi
# ctest --test-dir needs CMake >= 3.20; older ones run ctest inside the build folder.
CTEST_IN_DIR=1
if [ -n "${CMAKE_VERSION:-}" ] && [ "$(printf '%s\n3.20\n' "$CMAKE_VERSION" | sort -V | head -n1)" != 3.20 ]; then
    CTEST_IN_DIR=0
fi
export REPO BUILD D ARCH PY NVCC="${NVCC:-}" TENSORRT_ROOT="${TENSORRT_ROOT:-}" CTEST_IN_DIR
[ "$NEEDS_GPU" = 1 ] && say "GPU sm_$ARCH, nvcc ${NVCC:-none}, cmake ${CMAKE_VERSION:-none}, TensorRT headers" \
    "${TENSORRT_ROOT:-none}, writing to $DEST"

step_configure() {
    local args=(-S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CUDA_ARCHITECTURES=$ARCH"
        -DSWIN_TRT_BUILD_EMULATION=OFF -DSWIN_TRT_BUILD_TESTS=ON)
    [ -n "$NVCC" ] && args+=("-DCMAKE_CUDA_COMPILER=$NVCC")
    [ -n "$TENSORRT_ROOT" ] && args+=("-DTENSORRT_ROOT=$TENSORRT_ROOT")
    cmake "${args[@]}"
}
step_build() {
    cmake --build "$BUILD" -j "$(nproc)"
    local rc=$?
    "$PY" - "$D/build.json" "$ARCH" "$BUILD" "$TENSORRT_ROOT" <<'EOF'
import json, os, subprocess, sys
from pathlib import Path
out, arch, build, trt = sys.argv[1:]
build = Path(build)
plugins = build / "libswin_trt_plugins.so"
cmake = subprocess.run(["cmake", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
document = {"cuda_arch": arch, "cmake": cmake, "capi": (build / "libswin_trt_capi.so").is_file(),
            "plugins": plugins.is_file(), "device_driver": (build / "swin_trt_plugin_device_driver").is_file(),
            # the library Triton and DeepStream load: built where TENSORRT_ROOT also holds libnvinfer
            "plugins_autoreg": (build / "libswin_trt_plugins_autoreg.so").is_file(),
            "tensorrt_root": trt or None,
            "plugins_note": None if plugins.is_file() else
            "no TensorRT headers: set TENSORRT_ROOT=<folder with include/NvInfer.h> to build the plugin library"}
tmp = Path(out + ".tmp")
tmp.write_text(json.dumps(document, indent=2))
tmp.replace(out)
EOF
    return $rc
}
step_ctest() {
    # The device driver runs as its own step (plugin_device).
    if [ "$CTEST_IN_DIR" = 1 ]; then
        ctest --test-dir "$BUILD" --output-on-failure -E swin_trt_plugin_device_driver
    else
        echo "cmake older than 3.20 (no ctest --test-dir): running ctest inside $BUILD"
        (cd "$BUILD" && ctest --output-on-failure -E swin_trt_plugin_device_driver)
    fi
}
step_plugin_device() {
    if [ ! -x "$BUILD/swin_trt_plugin_device_driver" ]; then
        echo "skipped: no plugin library (no TensorRT headers: set TENSORRT_ROOT=<folder with include/NvInfer.h>," \
            "see plugins/README.md)" | tee "$STEP_DETAIL"
        return 0
    fi
    "$BUILD/swin_trt_plugin_device_driver" --json "$D/plugin_device.json"
    local rc=$?
    [ "$rc" = 77 ] && echo "no CUDA device visible to the driver (exit status 77)" >"$STEP_DETAIL"
    return $rc
}
step_gpu_tests() {
    # --noconftest: tests/conftest.py needs click and scikit-image, which these tests do not use.
    SWIN_TRT_CAPI=$BUILD/libswin_trt_capi.so PYTHONPATH=$REPO PYTHONUNBUFFERED=1 "$PY" -m pytest --noconftest \
        -p no:cacheprovider -q -rs tests/test_cuda_kernels.py \
        tests/test_tensor_core_attention.py::test_tensor_core_attention_on_gpu --junitxml="$D/junit.xml"
    local rc=$?
    # On a GPU machine a skipped kernel test is a failure of this check, not a pass.
    "$PY" -c "import sys, xml.etree.ElementTree as E; s = E.parse(sys.argv[1]).getroot(); s = s if s.tag == 'testsuite' \
else s.find('testsuite'); sys.exit(int(s.get('skipped', 0)) > 0 or int(s.get('tests', 0)) == 0)" "$D/junit.xml" \
        || { echo "gpu_tests: tests were skipped or none ran on this GPU machine"; [ "$rc" = 0 ] && rc=3; }
    return $rc
}
step_bench_kernels() {
    PYTHONPATH=$REPO PYTHONUNBUFFERED=1 "$PY" benchmarks/bench_kernels.py --capi "$BUILD/libswin_trt_capi.so" \
        --models swin_t,swin_b --batches 1,8 --dtypes float16,int8 --img-sizes 224x224,1024x1024 --modes v1,cosine \
        --flex --fused --time-budget "$((BENCH_LIMIT - 15))" --out "$D/kernels.json"
}
selftest_ok() { echo "selftest: ok"; }
selftest_fail() {
    echo "selftest: failing on purpose"
    return 3
}
export -f step_configure step_build step_ctest step_plugin_device step_gpu_tests step_bench_kernels selftest_ok \
    selftest_fail

FAILED=0
BUILT=unknown # configure/build not selected: later steps use what the build folder holds
for s in $STEPS; do
    case $s in
    configure) run_step configure "${LIMIT[configure]}" step_configure || { FAILED=1 BUILT=no; } ;;
    build)
        if [ "$BUILT" = no ]; then
            skip_step build "configure failed"
        else
            run_step build "${LIMIT[build]}" step_build || { FAILED=1 BUILT=no; }
        fi
        ;;
    ctest | plugin_device)
        if [ "$BUILT" = no ]; then
            skip_step "$s" "the build failed"
        else
            run_step "$s" "${LIMIT[$s]}" "step_$s" || FAILED=1
        fi
        ;;
    gpu_tests | bench_kernels)
        if [ ! -f "$BUILD/libswin_trt_capi.so" ]; then
            skip_step "$s" "no $BUILD/libswin_trt_capi.so (the build failed or did not run)"
            FAILED=1
        elif [ "$s" = gpu_tests ]; then
            run_step gpu_tests "${LIMIT[gpu_tests]}" step_gpu_tests || FAILED=1
        else
            left=$((DEADLINE - $(date +%s)))
            export BENCH_LIMIT=$((left < LIMIT[bench_kernels] * SCALE ? left : LIMIT[bench_kernels] * SCALE))
            run_step bench_kernels "${LIMIT[bench_kernels]}" step_bench_kernels || FAILED=1
        fi
        ;;
    selftest_ok | selftest_fail) run_step "$s" 30 "$s" || FAILED=1 ;;
    selftest_sleep_*) run_step "$s" 60 "sleep ${s#selftest_sleep_}" || FAILED=1 ;;
    esac
done

if [ "$FAILED" = 0 ]; then
    write_summary pass
    say "all steps passed in $(($(date +%s) - STARTED)) s; results in $DEST"
    exit 0
fi
write_summary fail
say "a step failed (see $JSON and $LOG)"
exit 1
