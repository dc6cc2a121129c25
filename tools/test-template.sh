#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
#
# Checks the starter template as a newcomer uses it: copied outside this repository, pointed at
# this checkout, built and booted with `cargo run` under QEMU. It must print its greeting and end
# the VM with Shutdown. Then the same crate with the seed README's example as its src/main.rs
# (tests/data/seed-readme-example.rs: `main!` and `println!`, no `configure_heap!`) must do the
# same: the API vmbase promised from the start still links, with the default heap.
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
# Boots the crate with `cargo run`, output in $console and $work/stderr.txt; $1 names the case.
boot() {
    local status=0
    VM=$repository/target/release/vm CARGO_TARGET_DIR=$work/target \
        cargo run --quiet --release >"$console" 2>"$work/stderr.txt" || status=$?
    ((status == 0)) || fail "$1: cargo run exited with $status"
}
fail() {
    echo "test-template: $1" >&2
    echo "--- console" >&2
    cat "$console" >&2
    echo "--- stderr" >&2
    cat "$work/stderr.txt" >&2
    exit 1
}

boot "the template"
[[ ! -s $work/stderr.txt ]] || fail "the template: the build or the boot printed warnings or errors"
grep -qx '\[INFO\] Hello from my_vm' "$console" || fail "the template: no greeting on the console"
grep -qx '\[INFO\] device tree at 0x80000000; x1=0x0, x2=0x0, x3=0x0' "$console" ||
    fail "the template: wrong boot registers on the console"
grep -qx 'VM ended: Shutdown' "$console" || fail "the template: the VM did not end with Shutdown"
echo "test-template: the template builds and boots outside the repository"

# The seed's example as written leaves its four arguments unused: rustc's warnings are expected.
cp "$repository/tests/data/seed-readme-example.rs" src/main.rs
boot "the seed README's example"
grep -qx 'Hello world' "$console" || fail "the seed README's example: no 'Hello world' on the console"
grep -qx 'VM ended: Shutdown' "$console" ||
    fail "the seed README's example: the VM did not end with Shutdown"
echo "test-template: the seed README's example (no configure_heap!) builds and boots outside the repository"
