#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
#
# Cargo runner for aarch64-unknown-none (see .cargo/config.toml): `cargo run` on a vmbase binary
# turns the ELF into a raw image and boots it with `vm run`; extra arguments go to `vm run`.
set -euo pipefail
elf=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
image=$(mktemp --suffix=.bin)
trap 'rm -f "$image"' EXIT
llvm-objcopy -O binary "$elf" "$image"
vm="$root/target/release/vm"
if [[ ! -x $vm ]]; then
    cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p vmclient --bin vm
fi
"$vm" run --bootloader "$image" "$@"
