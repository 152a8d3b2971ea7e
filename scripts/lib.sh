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

# cargo-fuzz builds and runs the fuzz targets of fuzz/. Installed only when missing.
ensure_cargo_fuzz() {
    if cargo fuzz --version >/dev/null 2>&1; then
        step "cargo-fuzz: installed ($(cargo fuzz --version))"
        return
    fi
    step "cargo-fuzz: installing (takes a few minutes)"
    # --locked first for the versions its authors tested; without it if a locked
    # dependency is missing from the registry mirror (as for wasm-bindgen-cli).
    cargo install cargo-fuzz --locked || cargo install cargo-fuzz
    cargo fuzz --version >/dev/null 2>&1 || die "cargo-fuzz is missing after install"
}

# `cargo fuzz "$@"` with a toolchain that takes the sanitizer flags cargo-fuzz passes:
# nightly where rustup has it, otherwise the stable toolchain with RUSTC_BOOTSTRAP=1. A new
# machine has the stable toolchain only and no toolchain can be fetched here, and stable
# ships the sanitizer runtimes too, so the targets build either way.
cargo_fuzz() {
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        cargo +nightly fuzz "$@"
    else
        RUSTC_BOOTSTRAP=1 cargo fuzz "$@"
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
    write_shell_version
}

# The service worker's cache name comes from the content of every file it serves, so a
# phone fetches a changed app shell (the wasm build included) without anyone bumping a
# version by hand. sw.js imports this file; browsers re-check imported scripts byte by byte.
write_shell_version() {
    local version
    version="$(find web-demo -type f ! -path "$WASM_OUT_DIR/shell-version.js" -print0 \
        | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
    printf "// Generated by scripts/lib.sh (write_shell_version); do not edit.\nself.CARESYNC_SHELL_VERSION = 'caresync-shell-%s';\n" \
        "$version" >"$WASM_OUT_DIR/shell-version.js"
    step "app shell version: $version"
}
