#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU and no Rust toolchain.
#
# Runs the prebuilt core test suites and the layer-stack benchmark on Flex (the CPU), CUDA and
# WGPU over Vulkan, then the ViT-S/16 and SmolLM2-135M training steps on CUDA and WGPU beside
# PyTorch's (fp32, TF32 and bf16 autocast; ours in f32 and with a bf16 base) on the same GPU, interleaved configuration by
# configuration; prints both tables and exits non-zero if anything failed. Build its input here with
#
#     cargo xtask gpu-bundle        # x86-64 release binaries with --features cuda,wgpu → .gpu-bundle/
#                                   # (stripped and gzipped), the fixtures and the PyTorch script
#
# then copy `.gpu-bundle/` and this script to the GPU machine (python3 with torch, timm,
# transformers and peft; no GGUF needed: the LLM is random SmolLM2-135M shapes) and run
#
#     scripts/gpu-check.sh [.gpu-bundle] [flex cuda wgpu]
#
# `STEPS_ONLY=1` skips the test suites; `STEPS=10 WARMUP=3` are the timing defaults.
set -u
bundle=${1:-.gpu-bundle}
shift || true
backends=${*:-flex cuda wgpu}
export WEGEFT_FIXTURES="$bundle/fixtures"
for packed in "$bundle"/*.gz "$bundle"/tests/*.gz; do # gpu-bundle gzips the binaries
    [ -e "$packed" ] && gunzip -f "$packed"
done
logs=$(mktemp -d)
failed=0
rows=()

check() { # check NAME COMMAND...: runs it, records pass/fail, counts and seconds
    local name=$1 log="$logs/${1//[^A-Za-z0-9_.-]/_}.log"
    shift
    local start=$SECONDS status=pass
    "$@" >"$log" 2>&1 || { status=FAIL; failed=1; }
    local passed
    passed=$(grep -oE '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 0}')
    rows+=("$(printf '| %-34s | %-4s | %6s | %5ss |' "$name" "$status" "$passed" $((SECONDS - start)))")
    [ "$status" = pass ] || { echo "--- $name failed; last lines of its log:"; tail -n 30 "$log"; }
}

if [ -z "${STEPS_ONLY:-}" ]; then
    for backend in $backends; do
        for test in "$bundle"/tests/*; do
            check "$backend $(basename "$test")" "$test" "$backend" --test-threads 1
        done
        check "$backend layer_stack bench" "$bundle/layer_stack" --backend "$backend" --rounds 5
        grep -E '^(backend|frozen|LoRA|WeGeFT)' "$logs/${backend}_layer_stack_bench.log" 2>/dev/null
    done
fi

# Training steps beside PyTorch. Each side runs in its own process, so peak memory is its own;
# the GPU's view of a process (nvidia-smi: allocator pools plus the CUDA context) is sampled the
# same way for both, beside PyTorch's own allocator peaks.
results="$logs/steps.jsonl"
: >"$results"
timing=(--steps "${STEPS:-10}" --warmup "${WARMUP:-3}")

sampled() { # sampled NAME LABEL SIDE COMMAND...: runs it, appends its JSON line with the GPU peak
    local name=$1 label=$2 side=$3 log="$logs/${1//[^A-Za-z0-9_.-]/_}.log"
    shift 3
    local start=$SECONDS status=pass
    "$@" >"$log" 2>&1 &
    local pid=$! peak=0 used
    while kill -0 "$pid" 2>/dev/null; do
        used=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null \
            | awk -F', *' -v pid="$pid" '$1 == pid {print $2}')
        [ -n "$used" ] && [ "$used" -gt "$peak" ] && peak=$used
        sleep 0.2
    done
    wait "$pid" || { status=FAIL; failed=1; echo "--- $name failed; last lines of its log:"; tail -n 20 "$log"; }
    rows+=("$(printf '| %-34s | %-4s | %6s | %5ss |' "$name" "$status" "-" $((SECONDS - start)))")
    local json
    json=$(grep '^{' "$log" | tail -n 1)
    [ -n "$json" ] && python3 -c 'import json, sys; r = json.loads(sys.argv[1]); r.update(label=sys.argv[2], side=sys.argv[3], smi_peak_mb=int(sys.argv[4])); print(json.dumps(r))' \
        "$json" "$label" "$side" "$peak" >>"$results"
}

step_pair() { # step_pair LABEL BENCH OURS_ARGS -- TORCH_ARGS: ours on CUDA and WGPU, then PyTorch
    local label=$1 bench=$2 ours=() torch=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do ours+=("$1"); shift; done
    shift
    torch=("$@")
    for backend in cuda wgpu; do
        case " $backends " in *" $backend "*) ;; *) continue ;; esac
        sampled "$backend $label" "$label" "ours $backend" "$bundle/${bench//-/_}" --backend "$backend" "${ours[@]}" "${timing[@]}"
        # Full fine-tuning trains the backbone, which a half-precision base would freeze in bf16.
        [ "$backend" = cuda ] && [[ " ${ours[*]} " != *" full "* ]] && sampled "cuda bf16 $label" "$label" "ours cuda bf16" \
            "$bundle/${bench//-/_}" --backend cuda --precision bf16 "${ours[@]}" "${timing[@]}"
    done
    sampled "torch fp32 $label" "$label" "torch fp32" python3 "$bundle/torch_reference_bench.py" "$bench" --device cuda "${torch[@]}" "${timing[@]}"
    sampled "torch tf32 $label" "$label" "torch tf32" python3 "$bundle/torch_reference_bench.py" "$bench" --device cuda --tf32 "${torch[@]}" "${timing[@]}"
    sampled "torch bf16 $label" "$label" "torch bf16" python3 "$bundle/torch_reference_bench.py" "$bench" --device cuda --amp bf16 "${torch[@]}" "${timing[@]}"
}

for batch in 32 128; do
    for method in wegeft lora; do
        args=(--size 224 --batch "$batch" --method "$method")
        step_pair "ViT-S/16 224 x $batch $method" vit-step "${args[@]}" -- "${args[@]}"
    done
done
step_pair "ViT-S/16 224 x 32 full" vit-step --size 224 --batch 32 --method full -- --size 224 --batch 32 --method full
for shape in "8 64 wegeft" "16 256 wegeft" "16 256 lora"; do
    read -r batch seq method <<<"$shape"
    args=(--batch "$batch" --seq "$seq" --method "$method")
    step_pair "SmolLM2-135M $batch x $seq $method" llm-step --random smollm2-135m "${args[@]}" -- --random smollm2-135m "${args[@]}"
done

echo
echo "| check                              | ok   | passed | time  |"
echo "|------------------------------------|------|--------|-------|"
printf '%s\n' "${rows[@]}"
echo
# Ours runs f32 storage with TF32 matmuls on sm80+ (burn 0.21's CUDA matmul has no fp32 setting),
# so "torch tf32" is the like-for-like column; the ratios are median step times (ours / theirs).
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
labels = list(dict.fromkeys(r["label"] for r in rows))
sides = ["ours cuda", "ours cuda bf16", "ours wgpu", "torch fp32", "torch tf32", "torch bf16"]
def cell(label, side):
    return next((r for r in rows if r["label"] == label and r["side"] == side), None)
def ms(r):
    return f'{r["median_s"] * 1e3:.1f} ms' if r else "-"
def ratio(a, b):
    return f'{a["median_s"] / b["median_s"]:.2f}x' if a and b else "-"
print("| step | " + " | ".join(sides) + " | cuda/fp32 | cuda/tf32 | bf16/bf16 | wgpu/cuda | GPU peak MB ours cuda / torch fp32 (nvidia-smi) | torch fp32 allocator peak MB |")
print("|---" * (len(sides) + 7) + "|")
for label in labels:
    c = {side: cell(label, side) for side in sides}
    ours, fp32 = c["ours cuda"], c["torch fp32"]
    peaks = f'{ours["smi_peak_mb"] if ours else "-"} / {fp32["smi_peak_mb"] if fp32 else "-"}'
    alloc = f'{fp32["peak_gpu_mb"]:.0f}' if fp32 and "peak_gpu_mb" in fp32 else "-"
    print(f"| {label} | " + " | ".join(ms(c[s]) for s in sides)
          + f' | {ratio(ours, fp32)} | {ratio(ours, c["torch tf32"])} | {ratio(c["ours cuda bf16"], c["torch bf16"])}'
          + f' | {ratio(c["ours wgpu"], ours)} | {peaks} | {alloc} |')
PY
exit $failed
