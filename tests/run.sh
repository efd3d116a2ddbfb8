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
  # cargo test closes on the last crate's doctests (often "0 passed"): a summary of the
  # whole run is the last line instead.
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  set +e
  cargo test --workspace --all-features --no-fail-fast 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  awk '/^test result:/ { for (i = 2; i <= NF; i++) { if ($i == "passed;") p += $(i-1); if ($i == "failed;") f += $(i-1) } }
       END { printf "summary: %d passed, %d failed\n", p, f }' "$log"
  exit "$status"
fi
