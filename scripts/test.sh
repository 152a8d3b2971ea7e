#!/usr/bin/env bash
# THE test command: formatting, lints, architecture invariants, the wasm build and all tests.
# Idempotent; installs the wasm target and wasm-bindgen-cli on first use.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
# shellcheck source=lib.sh
source scripts/lib.sh

# Fails if `package` is in caresync-core's normal dependency graph on the native target.
# `cargo tree -i X` exits non-zero with "did not match any packages" when X is absent from
# the graph: that is the passing case. Any other failure of cargo is reported as such.
check_core_lacks() {
    local package="$1" out rc=0
    out="$(cargo tree -p caresync-core -e normal -i "$package" 2>&1)" || rc=$?
    if [[ $rc -ne 0 ]]; then
        if grep -q "did not match any packages" <<<"$out"; then
            return 0
        fi
        printf '%s\n' "$out" >&2
        die "cargo tree failed while checking caresync-core for $package"
    fi
    if grep -q "^${package} v" <<<"$out"; then
        printf '%s\n' "$out" >&2
        die "architecture: caresync-core must not depend on $package (design §2: core does no IO)"
    fi
}

check_core_sources() {
    local hits
    # Code lines only: a comment may name what is forbidden.
    hits="$(grep -rnE 'SystemTime::now|Instant::now|std::fs|std::net|thread::spawn|use std::\{[^}]*\b(fs|net)\b' \
        core/src | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true)"
    if [[ -n "$hits" ]]; then
        printf '%s\n' "$hits" >&2
        die "architecture: caresync-core must not read clocks, touch files or sockets, or spawn threads (take \`now\` and bytes as arguments)"
    fi
}

# Fails if a workspace crate other than `owner` depends directly on `package` (normal,
# build or dev dependencies, any target).
check_only_user() {
    local package="$1" owner="$2" out users rc=0
    out="$(cargo tree -i "$package" -e normal,build,dev --target all --workspace \
        --depth 1 --prefix none 2>&1)" || rc=$?
    if [[ $rc -ne 0 ]]; then
        grep -q "did not match any packages" <<<"$out" && return 0
        printf '%s\n' "$out" >&2
        die "cargo tree failed while checking who depends on $package"
    fi
    users="$(grep -F " (${ROOT}/" <<<"$out" | grep -v "^${owner} " || true)"
    if [[ -n "$users" ]]; then
        printf '%s\n' "$users" >&2
        die "architecture: only $owner may depend on $package directly"
    fi
}

# A CI run builds everything once from a clean clone, so incremental caches (over half a
# gigabyte) would only fill its disk. Local runs keep them for quick rebuilds.
if [[ -n "${CI:-}" ]]; then
    export CARGO_INCREMENTAL=0
fi

# The phone downloads everything the wasm build links, so two versions of one crate there
# are bytes for nothing against design §4's 600 KB (bs58's sha2 0.10 beside automerge's
# 0.11 was 3 KB gzipped). Proc macros run at build time and are left out.
check_wasm_links_one_version_of_each_crate() {
    local out rc=0
    out="$(cargo tree -p caresync-wasm --target "$WASM_TARGET" -e normal,no-proc-macro \
        --duplicates 2>&1)" || rc=$?
    if [[ $rc -ne 0 ]]; then
        printf '%s\n' "$out" >&2
        die "cargo tree failed while checking the wasm build for duplicate crates"
    fi
    if ! grep -q "nothing to print" <<<"$out"; then
        printf '%s\n' "$out" >&2
        die "architecture: the wasm build links two versions of the crates above; the phone would download both"
    fi
}

ensure_rust_components
ensure_wasm_target
ensure_wasm_bindgen_cli
ensure_js_packages
ensure_chromium
ensure_cargo_fuzz

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "architecture invariants"
for package in tokio rusqlite axum wasm-bindgen; do
    check_core_lacks "$package"
done
check_core_sources
check_only_user wasm-bindgen caresync-wasm
check_only_user rusqlite caresync-server
check_only_user axum caresync-server
check_wasm_links_one_version_of_each_crate
step "architecture invariants: ok"

step "cargo build -p caresync-core --target $WASM_TARGET"
cargo build -p caresync-core --target "$WASM_TARGET"
build_wasm

# The same wasm file, bound for Node: the JS side of the bindings (plain objects, thrown
# errors with codes, core's schedule and report rows) checked without a browser.
NODE_WASM_DIR="$(mktemp -d)"
trap 'rm -rf "$NODE_WASM_DIR"' EXIT
step "node wasm/tests/node_smoke.mjs"
wasm-bindgen --target nodejs --out-dir "$NODE_WASM_DIR" "$WASM_FILE"
node wasm/tests/node_smoke.mjs "$NODE_WASM_DIR"

# The fuzz targets must keep building (design §5); running them is scripts/fuzz.sh's job,
# and their kept inputs are replayed by `cargo test` (tests/tests/fuzz_replay.rs). --dev:
# unoptimised, it builds in half the CPU time of the default optimised build, and proves
# the same thing.
step "cargo fuzz build --dev"
cargo_fuzz build --dev

# The relay tests start the `caresync` binary this same build makes. Without the variable
# the harness runs `cargo build -p caresync-server`, whose features (resolved for that
# package alone) differ from the workspace test build's: two minutes of rebuilding in CI.
DEBUG_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
step "cargo test --workspace --no-fail-fast"
CARESYNC_RELAY_BIN="$DEBUG_DIR/caresync" cargo test --workspace --no-fail-fast

# The benchmark at a small size: checks that every workload still runs against every peer
# and prints its table, not how fast (machines differ; BENCHMARKS.md has the full run).
# It runs the debug binaries `cargo test --workspace` has just built (cargo builds a
# package's binaries for its integration tests, and the relay's and the benchmark's both
# have some): a release build, or a `cargo build`/`cargo run` whose features differ from the
# test build's, would add minutes to every run and prove nothing more here.
step "caresync-bench --quick (the debug binaries the tests built)"
for binary in caresync caresync-bench samod-relay; do
    [[ -x "$DEBUG_DIR/$binary" ]] || die "$DEBUG_DIR/$binary is missing: cargo test should have built it"
done
BENCH_OUT="$(CARESYNC_RELAY_BIN="$DEBUG_DIR/caresync" "$DEBUG_DIR/caresync-bench" --quick)" \
    || die "the quick benchmark failed"
printf '%s\n' "$BENCH_OUT"
grep -q '^| wl ' <<<"$BENCH_OUT" || die "the quick benchmark printed no table"
