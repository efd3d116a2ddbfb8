#!/usr/bin/env bash
# The whole test suite: installs the real peers (idempotent), checks formatting and
# lints, then runs every test of the workspace with every adapter feature on.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/peers/install.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doctests; they go first so the suite's summary is the last line.
  cargo test --workspace --all-features --doc
  cargo nextest run --workspace --all-features --no-fail-fast
else
  cargo test --workspace --all-features --no-fail-fast
fi
