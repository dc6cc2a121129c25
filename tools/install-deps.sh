#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
#
# Installs what building and booting vmbase needs, if it is missing: Debian packages for QEMU,
# clang/LLVM (assembler, archiver, objcopy), bpfmt and dtc (for the FDT tests' round trips), and
# the Rust toolchain and bare-metal target that rust-toolchain.toml pins. Quiet and idempotent:
# prints only what it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs a command with its output kept aside, and shows that output only if it fails.
quietly() {
    local output
    if ! output=$("$@" 2>&1); then
        printf '%s\n' "$output" >&2
        echo "install-deps: failed: $*" >&2
        exit 1
    fi
}

# command -> Debian package that provides it
declare -A PACKAGES=(
    [qemu-system-aarch64]=qemu-system-arm
    [clang]=clang
    [llvm-objcopy]=llvm
    [llvm-ar]=llvm
    [bpfmt]=blueprint-tools
    [python3]=python3
    [dtc]=device-tree-compiler
)

missing=()
for command in "${!PACKAGES[@]}"; do
    command -v "$command" >/dev/null || missing+=("${PACKAGES[$command]}")
done
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "install-deps: installing ${missing[*]}"
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    quietly "${sudo[@]}" apt-get update -qq
    quietly "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# rustup installs the toolchain, components and targets rust-toolchain.toml names.
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup target list --installed --toolchain "$toolchain" 2>/dev/null | grep -qx aarch64-unknown-none; then
    echo "install-deps: installing Rust $toolchain for aarch64-unknown-none"
    quietly rustup toolchain install "$toolchain" --profile minimal -c clippy -c rustfmt -t aarch64-unknown-none
fi
