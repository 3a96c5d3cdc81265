#!/usr/bin/env bash
# The project's test command: formatting, lints and every test of the
# workspace, with property tests at 1,000 cases each. Installs what it needs.
#
# Everything builds with one cargo profile (`--release`) so that RocksDB's
# C++ is compiled once and shared by tests, binaries, benchmarks and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"

export PROPTEST_CASES="${PROPTEST_CASES:-1000}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --release --workspace --all-targets -- -D warnings
echo "== cargo test (PROPTEST_CASES=$PROPTEST_CASES)" >&2
cargo test --release --workspace
echo "== all tests passed" >&2
