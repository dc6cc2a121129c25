#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
#
# Checks the starter template as a newcomer uses it: copied outside this repository, pointed at
# this checkout, built and booted with `cargo run` under QEMU. It must print its greeting and end
# the VM with Shutdown. Then the same crate with the seed README's example as its src/main.rs
# (tests/data/seed-readme-example.rs: `main!` and `println!`, no `configure_heap!`) must do the
# same: the API vmbase promised from the start still links, with the default heap. Last, the
# mistakes a newcomer makes in their own crate must fail to link with a message that says what
# to change (sections.ld's ASSERTs), not boot into a silent reset.
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
# `vm` says which accelerator it used; anything else on stderr is a warning or an error.
grep -q '^vm: accelerator: ' "$work/stderr.txt" || fail "the template: vm did not say which accelerator it used"
! grep -qv '^vm: accelerator: ' "$work/stderr.txt" ||
    fail "the template: the build or the boot printed warnings or errors"
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

# Builds the crate as it is now, which must fail with `message` on stderr; $1 names the mistake.
refused() {
    local status=0
    CARGO_TARGET_DIR=$work/target cargo build --quiet --release >"$console" 2>"$work/stderr.txt" ||
        status=$?
    ((status != 0)) || fail "$1: the build succeeded"
    grep -qF "$2" "$work/stderr.txt" || fail "$1: the build failed without saying: $2"
}
cp "$repository/template/src/main.rs" src/main.rs
sed -i 's/^main!(main);$//' src/main.rs
refused "no main!" 'vmbase: the binary has no `main!(your_main);`'
cp "$repository/template/src/main.rs" src/main.rs
sed -i 's/^configure_heap!(64 \* 4096);$/configure_heap!(3 << 20);/' src/main.rs
grep -qx 'configure_heap!(3 << 20);' src/main.rs || fail "template/src/main.rs has no configure_heap! line"
refused "a heap larger than writable_data" \
    "do not fit in writable_data: shrink configure_heap!(SIZE), or enlarge writable_data in image.ld"
# The next step of the same mistake: writable_data grown in image.ld but not in idmap.S.
sed -i 's/^\(\twritable_data\t: ORIGIN = 0x80400000, LENGTH = \)2M$/\14M/' image.ld
grep -q 'LENGTH = 4M' image.ld || fail "image.ld has no 2 MiB writable_data line"
refused "writable_data enlarged in image.ld only" \
    "reach past what idmap.S maps writable (idmap_writable_data_begin..idmap_writable_data_end)"
echo "test-template: a missing main!, a heap too large and an idmap.S left behind image.ld fail to link, saying what to change"
