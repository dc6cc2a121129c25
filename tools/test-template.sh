#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
#
# Checks the starter template as a newcomer uses it: copied outside this repository, pointed at
# this checkout, built and booted with `cargo run` under QEMU. It must print its greeting and end
# the VM with Shutdown.
set -euo pipefail
repository=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp -rL "$repository/template" "$work/my_vm"
cd "$work/my_vm"
sed -i "s|^vmbase = { path = \"../vmbase\" }$|vmbase = { path = \"$repository\" }|" Cargo.toml
grep -qF "vmbase = { path = \"$repository\" }" Cargo.toml || {
    echo "test-template: template/Cargo.toml has no 'vmbase = { path = \"../vmbase\" }' line" >&2
    exit 1
}
# The repository's lock file pins every crate the template shares with vmbase.
cp "$repository/Cargo.lock" .

console=$work/console.txt
status=0
VM=$repository/target/release/vm CARGO_TARGET_DIR=$work/target \
    cargo run --quiet --release >"$console" 2>"$work/stderr.txt" || status=$?
fail() {
    echo "test-template: $1" >&2
    echo "--- console" >&2
    cat "$console" >&2
    echo "--- stderr" >&2
    cat "$work/stderr.txt" >&2
    exit 1
}
((status == 0)) || fail "cargo run exited with $status"
# `vm` says which accelerator it used; anything else on stderr is a warning or an error.
grep -q '^vm: accelerator: ' "$work/stderr.txt" || fail "vm did not say which accelerator it used"
! grep -qv '^vm: accelerator: ' "$work/stderr.txt" ||
    fail "the build or the boot printed warnings or errors"
grep -qx '\[INFO\] Hello from my_vm' "$console" || fail "no greeting on the console"
grep -qx '\[INFO\] device tree at 0x80000000; x1=0x0, x2=0x0, x3=0x0' "$console" ||
    fail "wrong boot registers on the console"
grep -qx 'VM ended: Shutdown' "$console" || fail "the VM did not end with Shutdown"
echo "test-template: the template builds and boots outside the repository"
