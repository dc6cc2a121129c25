#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
# Fuzzes the guest's FDT reader and console selection for FUZZ_SECONDS (default 60), then prints
# how many inputs ran. New corpus entries go to fuzz/corpus, crashes to fuzz/artifacts/fdt.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi

mkdir -p corpus
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# One job; debug assertions and overflow checks on, so arithmetic overflow is a crash. A single
# input running for over 10 s counts as a hang.
status=0
cargo fuzz run --debug-assertions fdt corpus corpus-seed -- \
  -dict=fdt.dict -max_len=65536 -timeout=10 -max_total_time="$seconds" -print_final_stats=1 \
  2>&1 | tee "$log" || status=$?

executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
echo "fuzz: ${executions:-0} executions in ${seconds}s (exit status ${status})"
exit "$status"
