# shellcheck shell=bash
# Shared steps of scripts/test.sh and scripts/run.sh. Source it from the repository root
# with `set -euo pipefail` in effect.

WASM_TARGET=wasm32-unknown-unknown
WASM_PROFILE=wasm-release
WASM_OUT_DIR=web-demo/pkg
WASM_FILE="${CARGO_TARGET_DIR:-target}/${WASM_TARGET}/${WASM_PROFILE}/caresync_wasm.wasm"

# Binaries installed by `cargo install` must be found even where ~/.cargo/bin is not on PATH.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step() {
    printf '==> %s\n' "$*"
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

ensure_rust_components() {
    if ! cargo fmt --version >/dev/null 2>&1; then
        step "installing rustfmt"
        rustup component add rustfmt
    fi
    if ! cargo clippy --version >/dev/null 2>&1; then
        step "installing clippy"
        rustup component add clippy
    fi
}

ensure_wasm_target() {
    if rustup target list --installed | grep -qx "$WASM_TARGET"; then
        step "rust target $WASM_TARGET: installed"
    else
        step "rust target $WASM_TARGET: installing"
        rustup target add "$WASM_TARGET"
    fi
}

# Prints the version of the wasm-bindgen crate recorded in Cargo.lock.
wasm_bindgen_lock_version() {
    awk '
        /^\[\[package\]\]/ { in_wb = 0 }
        /^name = "wasm-bindgen"$/ { in_wb = 1; next }
        in_wb && /^version = / { gsub(/^version = "|"$/, ""); print; exit }
    ' Cargo.lock
}

# wasm-bindgen-cli must be exactly the version of the wasm-bindgen crate in Cargo.lock.
ensure_wasm_bindgen_cli() {
    local want have
    if [[ ! -f Cargo.lock ]] || [[ -z "$(wasm_bindgen_lock_version)" ]]; then
        # Resolve the wasm crate's dependencies so that Cargo.lock records wasm-bindgen.
        cargo tree -p caresync-wasm --target "$WASM_TARGET" >/dev/null
    fi
    want="$(wasm_bindgen_lock_version)"
    [[ -n "$want" ]] || die "cannot find the wasm-bindgen version in Cargo.lock"
    have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
    if [[ "$have" == "$want" ]]; then
        step "wasm-bindgen-cli $want: installed"
    else
        step "wasm-bindgen-cli $want: installing (found: ${have:-none}; takes a few minutes)"
        # Not --locked: a dependency version in its lockfile is missing from the registry
        # mirror here (see shared/toolchain.md).
        cargo install wasm-bindgen-cli --version "$want"
        have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
        [[ "$have" == "$want" ]] || die "wasm-bindgen-cli is ${have:-missing} after install, want $want"
    fi
}

# The pinned JavaScript packages of tests/js (the official automerge-repo client and sync
# server) for the interoperability tests: `npm ci` when node_modules is missing or older
# than package-lock.json, nothing otherwise.
JS_DIR=tests/js

ensure_js_packages() {
    local installed="$JS_DIR/node_modules/.package-lock.json"
    command -v npm >/dev/null 2>&1 || die "npm not found: the tests need Node.js 20 and npm"
    if [[ -f "$installed" ]] && [[ ! "$JS_DIR/package-lock.json" -nt "$installed" ]]; then
        step "JavaScript packages in $JS_DIR: installed"
    else
        step "npm ci in $JS_DIR"
        (cd "$JS_DIR" && npm ci --no-audit --no-fund)
    fi
}

# Debian's chromium for the browser tests (Playwright's own browser downloads are not
# reachable from here; playwright-core drives /usr/bin/chromium instead).
CHROMIUM=/usr/bin/chromium

ensure_chromium() {
    if [[ -x "$CHROMIUM" ]]; then
        step "chromium: installed ($("$CHROMIUM" --version 2>/dev/null || echo unknown version))"
        return
    fi
    step "apt-get install chromium"
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium
    [[ -x "$CHROMIUM" ]] || die "chromium did not install at $CHROMIUM"
}

# Builds the browser module into web-demo/pkg and prints its gzipped size.
build_wasm() {
    step "cargo build -p caresync-wasm --target $WASM_TARGET --profile $WASM_PROFILE"
    cargo build -p caresync-wasm --target "$WASM_TARGET" --profile "$WASM_PROFILE"
    step "wasm-bindgen --target web -> $WASM_OUT_DIR"
    wasm-bindgen --target web --remove-name-section --out-dir "$WASM_OUT_DIR" "$WASM_FILE"
    local wasm="$WASM_OUT_DIR/caresync_wasm_bg.wasm" raw gz
    raw="$(wc -c <"$wasm")"
    gz="$(gzip -9c "$wasm" | wc -c)"
    step "wasm size: $wasm $raw bytes, $gz bytes gzipped"
}
