#!/usr/bin/env bash
# Runs every check and test of the project: formatting, lints, unit and integration
# tests. Installs what it needs that a fresh machine lacks.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest (first run on this machine only)"
  cargo install cargo-nextest --locked
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "cargo nextest run"
cargo nextest run --locked --no-fail-fast "$@"
