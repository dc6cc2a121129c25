#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
#
# Checks that cargo's own commands do what the README says on the host (`make test` runs
# `cargo test --workspace` itself): plain `cargo build` builds the host crates, plain `cargo test`
# includes vmbase's unit tests, and `cargo build --workspace` stops at the guests with a message
# that says how to build them.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() {
    echo "test-workspace: $*" >&2
    exit 1
}

cargo build --quiet || fail "cargo build failed"

# Kept whole before searching: grep -q would stop reading early and fail cargo with SIGPIPE.
artifacts=$(cargo test --no-run --message-format=json 2>/dev/null) || fail "cargo test --no-run failed"
grep -q '"target":{[^}]*"kind":\["lib"\][^}]*"name":"vmbase"[^}]*}[^{]*"profile":{[^}]*"test":true' \
    <<<"$artifacts" || fail "plain cargo test does not build vmbase's unit tests"

output=$(cargo build --workspace 2>&1) && fail "cargo build --workspace built the guests for the host"
grep -q 'runs in a VM: build it with `--target aarch64-unknown-none` (`make guests`)' <<<"$output" ||
    fail "cargo build --workspace failed without saying why:"$'\n'"$output"
echo "test-workspace: cargo build, cargo test and cargo build --workspace behave as documented"
