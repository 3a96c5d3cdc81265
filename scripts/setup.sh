#!/usr/bin/env bash
# Installs what building and testing the project needs on a fresh Debian or
# Ubuntu machine: a C/C++ toolchain and libclang (RocksDB's bindings), and
# a Rust toolchain with rustfmt and clippy. Safe to run again: it only
# installs what is missing.
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v curl >/dev/null 2>&1 || need_apt+=(curl ca-certificates)
# RocksDB's Rust bindings are generated with bindgen, which needs libclang.
# (libclang-cpp, which other packages pull in, is not libclang: match the C
# library's own names only.)
if ! compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null && ! compgen -G '/usr/lib/*-linux-gnu/libclang-[0-9]*.so*' >/dev/null; then
    need_apt+=(libclang-dev clang)
fi
# The fault-injection suite (jepsen/) puts each node in a network namespace
# and partitions with iptables when it runs as root.
if [ "$(id -u)" -eq 0 ]; then
    command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
    command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
fi
if ((${#need_apt[@]})); then
    echo "setup: installing ${need_apt[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: installing Rust with rustup" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt -c clippy
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if command -v rustup >/dev/null 2>&1; then
    for component in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component" || true
    done
fi
cargo --version >&2
