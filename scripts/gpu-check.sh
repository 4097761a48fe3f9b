#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU and no Rust toolchain.
#
# Runs the prebuilt core test suites, the layer-stack benchmark and the ViT-S training step on
# Flex (the CPU), CUDA and WGPU over Vulkan, prints a table, and exits non-zero if anything
# failed. Build its input here with
#
#     cargo xtask gpu-bundle        # x86-64 release binaries with --features cuda,wgpu → .gpu-bundle/
#                                   # (stripped and gzipped: about 18 MB)
#
# then copy `.gpu-bundle/` and this script to the GPU machine and run
#
#     scripts/gpu-check.sh [.gpu-bundle] [flex cuda wgpu]
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

for backend in $backends; do
    for test in "$bundle"/tests/*; do
        check "$backend $(basename "$test")" "$test" "$backend" --test-threads 1
    done
    check "$backend layer_stack bench" "$bundle/layer_stack" --backend "$backend" --rounds 5
    grep -E '^(backend|frozen|LoRA|WeGeFT)' "$logs/${backend}_layer_stack_bench.log" 2>/dev/null
    # The ViT-S/16 training step of `cargo xtask bench vit-step` (one JSON line each).
    for size in 112 224; do
        for method in lora wegeft; do
            check "$backend vit-step $size $method" "$bundle/vit_step" --backend "$backend" --size "$size" --method "$method"
            tail -n 1 "$logs/${backend}_vit-step_${size}_${method}.log"
        done
    done
done

echo
echo "| check                              | ok   | passed | time  |"
echo "|------------------------------------|------|--------|-------|"
printf '%s\n' "${rows[@]}"
exit $failed
