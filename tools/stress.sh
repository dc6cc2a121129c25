#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
#
# Boots the example many times, in a row and in parallel, through `vm run`, and reports every
# run that did not end with Shutdown, plus any QEMU process or vmclient temporary directory
# left behind. Exits non-zero if anything was wrong. Only what this script started is counted:
# its VMs are named stress-PID-..., and their temporary directories go to a TMPDIR of its own,
# so other VMs on the machine do not skew the counts.
set -euo pipefail
cd "$(dirname "$0")/.."

SEQUENTIAL=${SEQUENTIAL:-100}
PARALLEL=${PARALLEL:-8}
IMAGE=out/vmbase_example.bin
VM=target/release/vm
NAME_PREFIX=stress-$$

elapsed() { awk -v since="$1" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - since }'; }
# QEMU processes of this script's VMs (`-name guest=NAME` on QEMU's command line).
qemu_processes() { pgrep -c -f "^qemu-system-aarch64 .* -name guest=$NAME_PREFIX-" || true; }
temp_dirs() { find "$vm_tmp" -mindepth 1 -maxdepth 1 -name 'vmclient-*' | wc -l; }

results=$(mktemp -d)
vm_tmp=$(mktemp -d)
trap 'rm -rf "$results" "$vm_tmp"' EXIT

# One boot; its `VM ended:` reason goes to $results/NAME.
boot() {
    TMPDIR=$vm_tmp "$VM" run --bootloader "$IMAGE" --name "$NAME_PREFIX-$1" --console /dev/null \
        --log /dev/null --timeout 60 >"$results/$1" 2>&1 || true
}

# Boots COUNT VMs named PREFIX-N, one after another or (MODE parallel) all at once, then prints
# how many ended with Shutdown and what the others said; clears `ok` if any did not.
phase() {
    local label=$1 prefix=$2 count=$3 mode=$4 start=$EPOCHREALTIME good=0 i
    for i in $(seq "$count"); do
        if [[ $mode == parallel ]]; then boot "$prefix-$i" & else boot "$prefix-$i"; fi
    done
    wait
    for i in $(seq "$count"); do
        if grep -qx 'VM ended: Shutdown' "$results/$prefix-$i"; then
            good=$((good + 1))
        else
            echo "  run $prefix-$i: $(tail -n 1 "$results/$prefix-$i")"
        fi
    done
    printf '%-11s %d/%d Shutdown in %s s\n' "$label:" "$good" "$count" "$(elapsed "$start")"
    ((good == count)) || ok=0
}

ok=1
phase sequential seq "$SEQUENTIAL" sequential
phase parallel par "$PARALLEL" parallel

leftover_qemu=$(qemu_processes)
leftover_temp=$(temp_dirs)
echo "left behind: $leftover_qemu QEMU processes, $leftover_temp vmclient temporary directories"
((leftover_qemu == 0 && leftover_temp == 0)) || ok=0
((ok))
