#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
#
# Boots the example many times, in a row and in parallel, through `vm run`, and reports every
# run that did not end with Shutdown, plus any QEMU process or vmclient temporary directory
# left behind. Exits non-zero if anything was wrong.
set -euo pipefail
cd "$(dirname "$0")/.."

SEQUENTIAL=${SEQUENTIAL:-100}
PARALLEL=${PARALLEL:-8}
IMAGE=out/vmbase_example.bin
VM=target/release/vm
tmp=${TMPDIR:-/tmp}

elapsed() { awk -v since="$1" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - since }'; }
qemu_processes() { pgrep -c -x qemu-system-aar || true; }
temp_dirs() { find "$tmp" -maxdepth 1 -name 'vmclient-*' | wc -l; }

qemu_before=$(qemu_processes)
temp_before=$(temp_dirs)
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# One boot; its `VM ended:` reason goes to $results/NAME.
boot() {
    "$VM" run --bootloader "$IMAGE" --name "stress-$1" --console /dev/null --log /dev/null \
        --timeout 60 >"$results/$1" 2>&1 || true
}

# Counts the runs among $@ that ended with Shutdown, and prints the others.
tally() {
    local good=0 name
    for name in "$@"; do
        if grep -qx 'VM ended: Shutdown' "$results/$name"; then
            good=$((good + 1))
        else
            echo "  run $name: $(tail -n 1 "$results/$name")"
        fi
    done
    echo "$good"
}

failed=0
start=$EPOCHREALTIME
for i in $(seq "$SEQUENTIAL"); do boot "seq-$i"; done
mapfile -t names < <(seq -f 'seq-%g' "$SEQUENTIAL")
report=$(tally "${names[@]}")
good=$(tail -n 1 <<<"$report")
head -n -1 <<<"$report"
printf 'sequential: %d/%d Shutdown in %s s\n' "$good" "$SEQUENTIAL" "$(elapsed "$start")"
((good == SEQUENTIAL)) || failed=1

start=$EPOCHREALTIME
for i in $(seq "$PARALLEL"); do boot "par-$i" & done
wait
mapfile -t names < <(seq -f 'par-%g' "$PARALLEL")
report=$(tally "${names[@]}")
good=$(tail -n 1 <<<"$report")
head -n -1 <<<"$report"
printf 'parallel:   %d/%d Shutdown in %s s\n' "$good" "$PARALLEL" "$(elapsed "$start")"
((good == PARALLEL)) || failed=1

leftover_qemu=$(($(qemu_processes) - qemu_before))
leftover_temp=$(($(temp_dirs) - temp_before))
echo "left behind: $leftover_qemu QEMU processes, $leftover_temp vmclient temporary directories"
((leftover_qemu == 0 && leftover_temp == 0)) || failed=1
exit "$failed"
