#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
#
# Cargo runner for aarch64-unknown-none (see .cargo/config.toml): `cargo run` on a vmbase binary
# turns the ELF into a raw image and boots it with `vm run`; extra arguments go to `vm run`.
# Arguments for every run can be configured before the ELF, ended by `--`:
#   runner = ["tools/cargo-runner.sh", "--disk", "disk.img,writable", "--mem", "64", "--"]
# Copy it into your own crate as it is. The launcher is, in order: $VM, `vm` on PATH, or, when
# this script sits in the vmbase repository, the repository's own build of it.
set -euo pipefail
usage="usage: $0 [vm run arguments... --] ELF [vm run arguments...]"
configured=()
# Cargo passes the ELF as a path, never starting with `-`: anything else before it is configured.
if (($# > 0)) && [[ $1 == -* ]]; then
    while (($# > 0)) && [[ $1 != -- ]]; do
        configured+=("$1")
        shift
    done
    if (($# == 0)); then
        echo "cargo-runner: configured vm arguments must end with --; $usage" >&2
        exit 1
    fi
    shift
fi
if (($# < 1)); then
    echo "cargo-runner: $usage" >&2
    exit 1
fi
elf=$1
shift

if [[ -n ${VM:-} ]]; then
    vm=$VM
elif command -v vm >/dev/null; then
    vm=vm
else
    repository=$(cd "$(dirname "$0")/.." && pwd)
    if [[ ! -f $repository/host/Cargo.toml ]]; then
        echo "cargo-runner: no vm launcher: install it from the vmbase repository with" \
            "'cargo install --path host' (or 'make install'), or set VM to its path" >&2
        exit 1
    fi
    vm=$repository/target/release/vm
    cargo build --quiet --release --manifest-path "$repository/Cargo.toml" -p vmclient --bin vm
fi

image=$(mktemp --suffix=.bin)
trap 'rm -f "$image"' EXIT
llvm-objcopy -O binary "$elf" "$image"
"$vm" run --bootloader "$image" ${configured[@]+"${configured[@]}"} "$@"
