#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
#
# Builds every fuzz target and runs each over its seeds and saved regressions once (`make test`),
# so that a target that no longer compiles, or an input that once crashed, fails the tests. The
# build uses the pinned stable toolchain: libfuzzer-sys builds there, and `--cfg fuzzing` (which
# cargo-fuzz sets on nightly) turns on vmbase's fuzzing hooks. The binaries carry no coverage
# instrumentation, so they replay inputs but cannot fuzz: that is `make fuzz` (nightly).
set -euo pipefail
cd "$(dirname "$0")/.."
fail() {
    echo "test-fuzz: $*" >&2
    exit 1
}

# libfuzzer-sys compiles libFuzzer with the C++ compiler; without a `c++` (the installer puts
# only clang on a fresh machine), clang's.
command -v c++ >/dev/null || export CXX=clang++
# Its own target directory, apart from cargo-fuzz's instrumented nightly builds in fuzz/target.
export CARGO_TARGET_DIR=fuzz/target/replay
RUSTFLAGS="--cfg fuzzing" cargo build --quiet --manifest-path fuzz/Cargo.toml --bins ||
    fail "a fuzz target does not build"

targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^vmbase-fuzz$')
[[ -n "$targets" ]] || fail "no fuzz targets in fuzz/Cargo.toml"
for target in $targets; do
    seeds=fuzz/corpus-seed
    [[ "$target" == fdt_writer ]] && seeds=fuzz/corpus-seed-writer
    inputs=("$seeds"/*)
    [[ -d "fuzz/regressions/$target" ]] && inputs+=("fuzz/regressions/$target"/*)
    [[ -e "${inputs[0]}" ]] || fail "$target: no seeds in $seeds"
    "$CARGO_TARGET_DIR/debug/$target" "${inputs[@]}" >/dev/null 2>&1 ||
        fail "$target fails on one of its inputs: run $CARGO_TARGET_DIR/debug/$target ${inputs[*]}"
    echo "test-fuzz: $target: built, ${#inputs[@]} inputs replayed"
done
