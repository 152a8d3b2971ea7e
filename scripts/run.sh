#!/usr/bin/env bash
# THE run command: builds the web app's wasm module and starts the relay with demo data at
# http://127.0.0.1:8080 . Extra arguments go to `caresync serve`, e.g. --addr 0.0.0.0:8080.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

ensure_wasm_target
ensure_wasm_bindgen_cli
build_wasm

step "cargo run --release -p caresync-server -- serve --demo $*"
exec cargo run --release -p caresync-server -- serve --demo "$@"
