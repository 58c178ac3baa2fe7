#!/usr/bin/env bash
# The GPU check of issue 6 (throughput), in one call on a machine with one CUDA GPU:
#   1. the gpu-marked tests (fused augmentations on CUDA never synchronise, LARS on CUDA, bench on CUDA);
#   2. `contrastive bench` at the issue's two settings, with synthetic uint8 images held on the GPU:
#      ResNet-50 at 224 px (256-px sources), 512 views, bf16 + channels_last  (recipes/simclr_r50.toml)
#      ResNet-18 CIFAR stem at 32 px, 1024 views, bf16 + channels_last       (recipes/simclr_cifar10_r18.toml)
#      each with the fused pipeline (the default), the op-by-op reference pipeline, and torch.compile;
#   3. ../shared/anchors/gpu_anchor.py, so the anchors' numbers come from the same run and card.
# Results go to $OUT (or ./gpu_check_out): gpu_check.log (everything, with a summary at its end),
# bench.jsonl (one `contrastive bench --json` document per line) and anchor.jsonl.
#
# The GPU image has torch, torchvision, accelerate, pluggy, rich and pytest but not kornia or pydantic,
# and it cannot download. So first, on a machine with PyPI access, in the repository root:
#     bash scripts/gpu_check.sh prepare      # wheels for CPython 3.12 + the anchor script into .whl/
# then on the GPU machine (the device tool: carry [".whl"], timeout about 600 s):
#     bash scripts/gpu_check.sh
# GPU_CHECK_BUDGET_S (default 540) bounds the whole check: steps that would start too late are skipped
# (and say so), the slow compiled benchmarks last, so a short budget still gives the main figures.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "prepare" ]]; then
    set -e
    py=.venv/bin/python
    mkdir -p .whl
    # The versions this project is developed and tested with (those in .venv).
    wanted=()
    for name in kornia kornia_rs pydantic pydantic_core annotated_types typing_inspection typing_extensions; do
        wanted+=("$name==$($py -c "import importlib.metadata as m; print(m.version('$name'))")")
    done
    platforms=()
    for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
        platforms+=(--platform "$tag")
    done
    $py -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${platforms[@]}" -d .whl "${wanted[@]}"
    install -m 0644 ../shared/anchors/gpu_anchor.py .whl/gpu_anchor.py
    ls -l .whl
    exit 0
fi

OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
BENCH_JSONL="$OUT/bench.jsonl"
SCRATCH="$(mktemp -d)"
deadline=$((SECONDS + ${GPU_CHECK_BUDGET_S:-540}))
export PYTHONUNBUFFERED=1

say() { echo "== $* ($(date -u +%H:%M:%S), ${SECONDS}s)" | tee -a "$LOG"; }

# run_step NAME LONGEST_SECONDS COMMAND...: run unless fewer than LONGEST_SECONDS remain; cut at the deadline.
run_step() {
    local name=$1 longest=$2
    shift 2
    local left=$((deadline - SECONDS))
    if ((left < longest)); then
        say "SKIPPED $name: ${left}s left of the budget, it may need ${longest}s"
        return 0
    fi
    say "$name"
    timeout "$left" "$@" 2>&1 | tee -a "$LOG"
    local status=${PIPESTATUS[0]}
    ((status == 0)) || say "FAILED $name (exit $status)"
}

# bench NAME RECIPE SHAPE BATCH LONGEST [--set ...]: one `contrastive bench`, its JSON appended to bench.jsonl.
bench() {
    local name=$1 recipe=$2 shape=$3 batch=$4 longest=$5
    shift 5
    run_step "bench $name" "$longest" contrastive bench "$recipe" --synthetic-images "$shape" \
        --batch-size "$batch" --steps 20 --warmup 5 --rounds 5 --json "$SCRATCH/$name.json" "$@"
    if [[ -f "$SCRATCH/$name.json" ]]; then
        python3 -c "import json, sys; d = json.load(open(sys.argv[1])); d['name'] = sys.argv[2]; print(json.dumps(d))" \
            "$SCRATCH/$name.json" "$name" >>"$BENCH_JSONL"
    fi
}

say "setup"
{
    nvidia-smi -L
    python3 -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name())"
} 2>&1 | tee -a "$LOG"
if [[ -d .whl ]] && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tee -a "$LOG"
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | tee -a "$LOG"
if ! python3 -c "import kornia, pydantic, contrastive_core" 2>>"$LOG"; then
    say "kornia or pydantic is missing: run 'bash scripts/gpu_check.sh prepare' where PyPI is reachable, carry .whl"
    exit 2
fi

R50=recipes/simclr_r50.toml
R18=recipes/simclr_cifar10_r18.toml
run_step "gpu tests" 120 python3 -m pytest -m gpu -q -p no:cacheprovider --continue-on-collection-errors tests
bench r50_fused "$R50" 3,256,256 256 60
bench r18_fused "$R18" 3,32,32 512 45
if [[ -f .whl/gpu_anchor.py ]]; then
    run_step "anchor (gpu_anchor.py)" 150 python3 .whl/gpu_anchor.py
else
    say "SKIPPED anchor: .whl/gpu_anchor.py is missing (bash scripts/gpu_check.sh prepare copies it)"
fi
bench r50_reference "$R50" 3,256,256 256 60 --set "stages[0].fused_augmentations=false"
bench r18_reference "$R18" 3,32,32 512 45 --set "stages[0].fused_augmentations=false"
bench r50_compiled "$R50" 3,256,256 256 180 --set "stages[0].compile=true"
bench r18_compiled "$R18" 3,32,32 512 180 --set "stages[0].compile=true"

say "summary"
python3 - "$BENCH_JSONL" "$OUT/anchor.jsonl" <<'EOF' 2>&1 | tee -a "$LOG"
import json, os, sys
bench_path, anchor_path = sys.argv[1:3]
if os.path.exists(bench_path):
    print(f"{'run':16} {'pipeline':22} {'bare v/s':>9} {'full v/s':>9} {'full/bare':>9} {'aug v/s':>9} {'optim ms':>8}")
    for line in open(bench_path):
        d = json.loads(line)
        m = d["measurements"]
        print(f"{d['name']:16} {d['settings']['pipeline']:22} {m['bare']['views_per_s']:9.0f} "
              f"{m['full']['views_per_s']:9.0f} {d['full_over_bare']:9.2f} {m['augmentation']['views_per_s']:9.0f} "
              f"{1000 * m['optimizer']['seconds_per_step']:8.2f}")
if os.path.exists(anchor_path):
    for line in open(anchor_path):
        d = json.loads(line)
        if "views_per_s" in d:
            print(f"anchor {d['bench']:28} {d.get('model', ''):9} {d['views_per_s']:9.0f} views/s")
EOF
rm -rf "$SCRATCH"
say "done"
