#!/usr/bin/env bash
# The GPU check of issue 6 (throughput), in one call on a machine with one CUDA GPU. Steps, in this order
# (GPU_CHECK_STEPS="tests main ..." picks some):
#   tests      the gpu-marked tests (fused augmentations and fp16 views on CUDA never synchronise, LARS,
#              nvJPEG decoding against the CPU decoder, bench on CUDA);
#   main       `contrastive bench` at the issue's two settings, synthetic uint8 images held on the GPU:
#              ResNet-50 at 224 px (256-px sources), 512 views, bf16 + channels_last (recipes/simclr_r50.toml)
#              ResNet-18 CIFAR stem at 32 px, 1024 views, bf16 + channels_last      (recipes/simclr_cifar10_r18.toml)
#   caching    the largest ResNet-50 batch at 224 px that trains on the GPU, without and with gradient caching
#              (micro_batch_size = 256), and its time per step (scripts/largest_batch.py);
#   profile    the fused augmentations kernel by kernel at the ResNet-50 setting (scripts/profile_augmentations.py);
#   anchor     ../shared/anchors/gpu_anchor.py, so the anchors' numbers come from the same run and card;
#   jpeg       image-folder loading at the ResNet-50 setting, on a folder of real-photo JPEGs
#              (scripts/make_jpeg_folder.py): a decoding profile, then bench with nvJPEG decoding (workers
#              read bytes) and with decoding in the CPU workers, 8 workers each;
#   end_to_end `contrastive bench --end-to-end`: a real run of the training stage against the full step,
#              at the ResNet-18 setting on CIFAR-shaped data held in memory (the CIFAR-10 binary layout,
#              50,000 records tiled from the fixture's) and at the ResNet-50 setting on the `jpeg` step's
#              folder (nvJPEG, 8 workers) when that step made it;
#   precision  `main` with the augmentation arithmetic in float32 instead of float16;
#   reference  `main` with the op-by-op reference pipeline;
#   compiled   `main` with torch.compile.
# Results go to $OUT (or ./gpu_check_out): gpu_check.log (everything, with a summary at its end),
# bench.jsonl (one `contrastive bench --json` document per line) and anchor.jsonl.
#
# The GPU image has torch, torchvision, accelerate, pluggy, rich and pytest but not kornia or pydantic,
# and it cannot download. So first, on a machine with PyPI access, in the repository root:
#     bash scripts/gpu_check.sh prepare      # wheels for CPython 3.12 + the anchor script into .whl/
# then on the GPU machine (the device tool: carry [".whl"], timeout about 600 s):
#     bash scripts/gpu_check.sh
# `bash scripts/gpu_check.sh smoke` runs the same steps at tiny sizes on the CPU, to check the script here.
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
SMOKE=0
[[ "${1:-}" == "smoke" ]] && SMOKE=1
PY=python3
((SMOKE)) && PY=.venv/bin/python

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

# bench NAME RECIPE BATCH LONGEST [bench options and --set ...]: one `contrastive bench`, its JSON appended
# to bench.jsonl.
bench() {
    local name=$1 recipe=$2 batch=$3 longest=$4
    shift 4
    local sizes=(--steps 10 --warmup 3 --rounds 5)
    ((SMOKE)) && sizes=(--steps 2 --warmup 1 --rounds 2 --set run.device=cpu --set run.precision=no)
    run_step "bench $name" "$longest" $PY -m contrastive_core.cli bench "$recipe" --batch-size "$batch" \
        "${sizes[@]}" --json "$SCRATCH/$name.json" "$@"
    if [[ -f "$SCRATCH/$name.json" ]]; then
        $PY -c "import json, sys; d = json.load(open(sys.argv[1])); d['name'] = sys.argv[2]; print(json.dumps(d))" \
            "$SCRATCH/$name.json" "$name" >>"$BENCH_JSONL"
    fi
}

say "setup"
if ((SMOKE)); then
    R50_IMAGES=3,40,40 R18_IMAGES=3,32,32 R50_BATCH=4 R18_BATCH=8 JPEGS=(--images 96 --source tests/fixtures/image_folder)
    R50_SET=(--set "augmentations[0].size=32" --set model.encoder.type=resnet18)
else
    R50_IMAGES=3,256,256 R18_IMAGES=3,32,32 R50_BATCH=256 R18_BATCH=512 JPEGS=(--images 5120)
    R50_SET=()
    {
        nvidia-smi -L
        $PY -c "import sys, torch; print(sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name())"
    } 2>&1 | tee -a "$LOG"
    if [[ -d .whl ]] && ls .whl/*.whl >/dev/null 2>&1; then
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl 2>&1 | tee -a "$LOG"
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
    $PY -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | tee -a "$LOG"
fi
if ! $PY -c "import kornia, pydantic, contrastive_core, contrastive_plugins" 2>>"$LOG"; then
    say "kornia, pydantic or the project is missing: run 'bash scripts/gpu_check.sh prepare' where PyPI is reachable, carry .whl"
    exit 2
fi

R50=recipes/simclr_r50.toml
R18=recipes/simclr_cifar10_r18.toml
# GPU_CHECK_STEPS picks and orders the steps (default: all, the main figures first).
steps=" ${GPU_CHECK_STEPS:-tests main caching profile anchor jpeg end_to_end precision reference compiled} "
has() { [[ $steps == *" $1 "* ]]; }

if has tests; then
    # The files holding gpu-marked tests (listed, so that other files' imports are not needed there).
    gpu_files=$(grep -rl "mark.gpu" tests --include "test_*.py" | sort)
    if ((SMOKE)); then
        run_step "gpu tests (collection only)" 60 $PY -m pytest -m gpu -q -p no:cacheprovider --collect-only $gpu_files
    else
        run_step "gpu tests" 90 $PY -m pytest -m gpu -q -p no:cacheprovider -rs $gpu_files
    fi
fi
if has main; then
    # The full step against the bare encoder step at the issue's two settings, as the recipes run them.
    bench r50_fused "$R50" "$R50_BATCH" 45 --synthetic-images "$R50_IMAGES" "${R50_SET[@]}"
    bench r18_fused "$R18" "$R18_BATCH" 40 --synthetic-images "$R18_IMAGES"
fi
if has caching; then
    # Doubling batches until out of memory, without and with micro-batches of 256 (issue 17's GPU figure).
    if ((SMOKE)); then
        run_step "largest batch (smoke)" 120 $PY scripts/largest_batch.py "$R50" --images "$R50_IMAGES" \
            --start 4 --limit 8 --micro 2 --set run.device=cpu --set run.precision=no "${R50_SET[@]}"
    else
        run_step "largest batch (ResNet-50, 224 px)" 240 $PY scripts/largest_batch.py "$R50" --images "$R50_IMAGES" \
            --start 512 --limit 32768 --micro 256
    fi
fi
if has profile; then
    # Kernel by kernel: where the fused augmentations spend their time, in float32 and float16.
    run_step "augmentation profile (ResNet-50 setting)" 40 $PY scripts/profile_augmentations.py "$R50" \
        --batch "$R50_BATCH" --images "$R50_IMAGES"
fi
if has anchor; then
    anchor=../shared/anchors/gpu_anchor.py
    [[ -f .whl/gpu_anchor.py ]] && anchor=.whl/gpu_anchor.py
    if [[ ! -f $anchor ]]; then
        say "SKIPPED anchor: $anchor is missing (bash scripts/gpu_check.sh prepare copies it)"
    elif ((SMOKE)); then
        run_step "anchor (gpu_anchor.py --smoke)" 120 env OUT="$OUT" $PY "$anchor" --smoke
    else
        run_step "anchor (gpu_anchor.py)" 100 env OUT="$OUT" $PY "$anchor"
    fi
fi
if has jpeg; then
    # Image-folder loading: nvJPEG on the GPU (workers read bytes) against decoding in the CPU workers.
    run_step "JPEG folder" 60 $PY scripts/make_jpeg_folder.py "$SCRATCH/jpegs" "${JPEGS[@]}"
    if [[ -d $SCRATCH/jpegs/train ]]; then
        run_step "JPEG decoding profile" 40 $PY scripts/profile_jpeg_decoding.py "$SCRATCH/jpegs/train" --batch "$R50_BATCH"
        for decode in device workers; do
            bench "r50_jpeg_$decode" "$R50" "$R50_BATCH" 50 --set "data.root=$SCRATCH/jpegs" \
                --set "data.decode=$decode" --set "stages[0].num_workers=8" "${R50_SET[@]}"
        done
        # The old training images (224 px centre squares) against the whole photos of the runs above.
        bench r50_jpeg_device_square "$R50" "$R50_BATCH" 50 --set "data.root=$SCRATCH/jpegs" \
            --set "data.decode=device" --set "data.train_images=square" --set "stages[0].num_workers=8" \
            "${R50_SET[@]}"
    fi
fi
if has end_to_end; then
    # A real run (loader, logging, checkpoints) against the step. The CIFAR-10 binary files, 10,000
    # records each, repeat the fixture's records: the data is held on the GPU like CIFAR-10's.
    run_step "CIFAR-shaped data" 30 $PY -c '
import sys
from pathlib import Path
source, out = Path("tests/fixtures/cifar10/cifar-10-batches-bin"), Path(sys.argv[1]) / "cifar-10-batches-bin"
out.mkdir(parents=True)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    records = (source / name).read_bytes()
    count = len(records) // 3073
    (out / name).write_bytes(records * (10000 // count) + records[: 3073 * (10000 % count)])
' "$SCRATCH/cifar"
    E2E_STEPS=(--end-to-end --end-to-end-steps 60)
    ((SMOKE)) && E2E_STEPS=(--end-to-end --end-to-end-steps 3)
    if [[ -d $SCRATCH/cifar ]]; then
        bench r18_end_to_end "$R18" "$R18_BATCH" 90 --set "data.root=$SCRATCH/cifar" "${E2E_STEPS[@]}"
    fi
    if [[ -d $SCRATCH/jpegs/train ]]; then
        bench r50_jpeg_end_to_end "$R50" "$R50_BATCH" 120 --set "data.root=$SCRATCH/jpegs" \
            --set "data.decode=device" --set "stages[0].num_workers=8" "${R50_SET[@]}" "${E2E_STEPS[@]}"
    fi
fi
if has precision; then
    # The same as `main` with the augmentation arithmetic in float32 instead of the default float16.
    bench r50_fused_fp32aug "$R50" "$R50_BATCH" 45 --synthetic-images "$R50_IMAGES" \
        --set "stages[0].augmentation_precision=fp32" "${R50_SET[@]}"
    bench r18_fused_fp32aug "$R18" "$R18_BATCH" 40 --synthetic-images "$R18_IMAGES" \
        --set "stages[0].augmentation_precision=fp32"
fi
if has reference; then
    bench r50_reference "$R50" "$R50_BATCH" 45 --synthetic-images "$R50_IMAGES" \
        --set "stages[0].fused_augmentations=false" "${R50_SET[@]}"
    bench r18_reference "$R18" "$R18_BATCH" 40 --synthetic-images "$R18_IMAGES" --set "stages[0].fused_augmentations=false"
fi
if has compiled && ((!SMOKE)); then
    bench r18_compiled "$R18" "$R18_BATCH" 150 --synthetic-images "$R18_IMAGES" --set "stages[0].compile=true"
    bench r50_compiled "$R50" "$R50_BATCH" 150 --synthetic-images "$R50_IMAGES" --set "stages[0].compile=true"
fi

say "summary"
$PY - "$BENCH_JSONL" "$OUT/anchor.jsonl" <<'EOF2' 2>&1 | tee -a "$LOG"
import json, os, sys
bench_path, anchor_path = sys.argv[1:3]
if os.path.exists(bench_path):
    print(f"{'run':18} {'pipeline':20} {'aug dtype':9} {'bare v/s':>9} {'full v/s':>9} {'full/bare':>9} "
          f"{'aug v/s':>9} {'data v/s':>9} {'optim ms':>8}")
    for line in open(bench_path):
        d = json.loads(line)
        m = d["measurements"]
        print(f"{d['name']:18} {d['settings']['pipeline']:20} {d['settings'].get('augmentation_dtype', '?'):9} "
              f"{m['bare']['views_per_s']:9.0f} "
              f"{m['full']['views_per_s']:9.0f} {d['full_over_bare']:9.2f} {m['augmentation']['views_per_s']:9.0f} "
              f"{m['data']['views_per_s']:9.0f} {1000 * m['optimizer']['seconds_per_step']:8.2f}")
        if "end_to_end" in d:
            e = d["end_to_end"]
            print(f"{'':18} end to end: loop {e['loop_views_per_s']:9.0f} views/s ({e['loop_over_full']:.2f} of full), "
                  f"run {e['run_views_per_s']:9.0f} views/s ({e['run_over_full']:.2f} of full)")
if os.path.exists(anchor_path):
    for line in open(anchor_path):
        d = json.loads(line)
        if "views_per_s" in d:
            print(f"anchor {d['bench']:28} {d.get('model', ''):9} {d['views_per_s']:9.0f} views/s")
EOF2
rm -rf "$SCRATCH"
say "done"
