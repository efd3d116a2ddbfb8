#!/usr/bin/env bash
# The whole test suite: installs the real peers (idempotent), checks formatting and
# lints, then runs every test of the workspace with every adapter feature on.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/peers/install.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast
  # nextest does not run doctests.
  cargo test --workspace --all-features --doc
else
  cargo test --workspace --all-features --no-fail-fast
fi
