#!/usr/bin/env bash
# Runs caresync's fuzz targets (fuzz/, design §5) for a while each:
#
#     scripts/fuzz.sh <frame_decoder|document_load|relay_receive|all> <seconds per target>
#
# The kept corpus fuzz/corpus/<target>/ is read but never written: libFuzzer puts the new
# inputs it finds in a scratch folder under fuzz/target/, so the corpus stays small and
# reviewed. An input that crashes a target (or hangs or exhausts memory) is copied from
# libFuzzer's fuzz/artifacts/<target>/ into fuzz/regressions/<target>/, which the replay
# test (tests/tests/fuzz_replay.rs) runs with the rest of the suite. Exits non-zero when
# any target crashed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

TARGETS=(frame_decoder document_load relay_receive)
# An input taking longer than this, in seconds, is reported as a hang.
INPUT_TIMEOUT_S=30

usage() {
    die "usage: scripts/fuzz.sh <${TARGETS[*]// /|}|all> <seconds per target>"
}

[[ $# -eq 2 ]] || usage
which="$1"
seconds="$2"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || usage
if [[ "$which" == all ]]; then
    chosen=("${TARGETS[@]}")
elif [[ " ${TARGETS[*]} " == *" $which "* ]]; then
    chosen=("$which")
else
    usage
fi

ensure_cargo_fuzz

# Copies the artifacts of `target` not yet kept into fuzz/regressions/<target>/; libFuzzer
# names them by the hash of their content, so a name already kept is the same input.
keep_artifacts() {
    local target="$1" artifact name
    mkdir -p "fuzz/regressions/$target"
    for artifact in "fuzz/artifacts/$target"/*; do
        [[ -f "$artifact" ]] || continue
        name="$(basename "$artifact")"
        if [[ ! -e "fuzz/regressions/$target/$name" ]]; then
            cp "$artifact" "fuzz/regressions/$target/$name"
            step "kept fuzz/regressions/$target/$name"
        fi
    done
}

failed=()
for target in "${chosen[@]}"; do
    scratch="fuzz/target/scratch-corpus/$target"
    mkdir -p "$scratch" "fuzz/corpus/$target" "fuzz/artifacts/$target"
    step "cargo fuzz run $target for ${seconds}s"
    rc=0
    cargo_fuzz run "$target" "$scratch" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout="$INPUT_TIMEOUT_S" -print_final_stats=1 || rc=$?
    # libFuzzer exits non-zero on a crash, a hang or running out of memory.
    keep_artifacts "$target"
    if [[ $rc -ne 0 ]]; then
        failed+=("$target")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    die "fuzz targets that crashed: ${failed[*]} (inputs kept in fuzz/regressions/; fix the cause, then cargo test -p caresync-tests --test fuzz_replay)"
fi
step "fuzzing: no crash in ${chosen[*]}"
