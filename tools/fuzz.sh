#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
# Fuzzes vmbase for FUZZ_SECONDS (default 60) per target, one target at a time, then prints how
# many inputs each ran. Targets (FUZZ_TARGETS, default "fdt fdt_writer pci"): fdt (reader and
# console selection), fdt_writer (edits on arbitrary trees in tight buffers: a refused edit
# changes nothing, an accepted one keeps the node's other properties), pci (the PCI decoder,
# interrupt lookup, usable windows and the BAR allocator's invariants), dtoolkit (the crate
# docs/guide.md compares against). New corpus entries go to fuzz/corpus-<target>, crashes to
# fuzz/artifacts/<target>; a crash, once fixed, goes to fuzz/regressions/<target>, which
# `make test` replays (tools/test-fuzz.sh).
#
# cargo-fuzz needs a nightly toolchain (fuzz/rust-toolchain.toml) for its sanitizer and
# coverage flags: installed here with rustup, once, as cargo-fuzz itself is.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-fdt fdt_writer pci}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal >/dev/null
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi

# libfuzzer-sys compiles libFuzzer with the C++ compiler; without a `c++` (the installer puts
# only clang on a fresh machine), clang's.
command -v c++ >/dev/null || export CXX=clang++
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

status=0
for target in $targets; do
  # The writer's inputs start with an edit script; the others start with a tree.
  seeds=(corpus-seed)
  [[ "$target" == fdt_writer ]] && seeds=(corpus-seed-writer)
  [[ -d "regressions/$target" ]] && seeds+=("regressions/$target")
  mkdir -p "corpus-$target"
  # One job; debug assertions and overflow checks on, so arithmetic overflow is a crash. A
  # single input running for over 10 s counts as a hang.
  target_status=0
  started=$SECONDS
  cargo fuzz run --debug-assertions "$target" "corpus-$target" "${seeds[@]}" -- \
    -dict=fdt.dict -max_len=65536 -timeout=10 -max_total_time="$seconds" -print_final_stats=1 \
    2>&1 | tee "$log" || target_status=$?
  executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
  # A crash ends the run early: the time is what it ran, and its executions are libFuzzer's
  # count at the crash.
  [[ -n "$executions" ]] || executions="$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
  echo "fuzz: $target: ${executions:-0} executions in $((SECONDS - started))s (exit status ${target_status})"
  ((target_status == 0)) || status=$target_status
done
exit "$status"
