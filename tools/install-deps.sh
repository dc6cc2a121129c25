#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
#
# Installs what building and booting vmbase needs, if it is missing: Debian packages for QEMU,
# clang/LLVM (assembler, archiver, objcopy), bpfmt, gdb-multiarch (for `vm run --gdb`) and dtc
# (for the FDT tests' round trips), and the Rust toolchain and bare-metal target that
# rust-toolchain.toml pins. Quiet and idempotent: prints only what it installs.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs a command with its output kept aside, and shows that output only if it fails.
quietly() {
    local output
    if ! output=$("$@" 2>&1); then
        printf '%s\n' "$output" >&2
        echo "install-deps: failed: $*" >&2
        exit 1
    fi
}

# command -> Debian package that provides it
declare -A PACKAGES=(
    [qemu-system-aarch64]=qemu-system-arm
    [clang]=clang
    [llvm-objcopy]=llvm
    [llvm-ar]=llvm
    [bpfmt]=blueprint-tools
    [python3]=python3
    [gdb-multiarch]=gdb-multiarch
    [dtc]=device-tree-compiler
)

missing=()
for command in "${!PACKAGES[@]}"; do
    command -v "$command" >/dev/null || missing+=("${PACKAGES[$command]}")
done
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "install-deps: installing ${missing[*]}"
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    quietly "${sudo[@]}" apt-get update -qq
    quietly "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# rustup installs the toolchain, components and targets rust-toolchain.toml names.
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup target list --installed --toolchain "$toolchain" 2>/dev/null | grep -qx aarch64-unknown-none; then
    echo "install-deps: installing Rust $toolchain for aarch64-unknown-none"
    quietly rustup toolchain install "$toolchain" --profile minimal -c clippy -c rustfmt -t aarch64-unknown-none
fi

# With `peers`: the firmwares `make bench` compares vmbase_linuxboot with, Debian's U-Boot for
# QEMU (u-boot-qemu) and EDK2 (qemu-efi-aarch64).
if [[ "${1:-}" == peers ]]; then
    firmwares=(/usr/lib/u-boot/qemu_arm64/u-boot.bin /usr/share/qemu-efi-aarch64/QEMU_EFI.fd)
    [[ -s "${firmwares[0]}" && -s "${firmwares[1]}" ]] && exit 0
    echo "install-deps: installing u-boot-qemu qemu-efi-aarch64"
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to apt-get install u-boot-qemu qemu-efi-aarch64" >&2; exit 1; }
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    install_peers() {
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends u-boot-qemu qemu-efi-aarch64
    }
    # Package lists that are missing or stale are refreshed once.
    if ! install_peers >/dev/null 2>&1; then
        quietly "${sudo[@]}" apt-get update -qq
        quietly install_peers
    fi
    exit 0
fi

# With `linux`: Debian's arm64 kernel and a static busybox, for the tests that boot Linux. The
# kernel package is whatever `linux-image-arm64` depends on today (Debian's archive drops
# superseded point releases, so no version is pinned); both are unpacked into a cache outside
# the repository, once: $XDG_CACHE_HOME/vmbase/linux (default ~/.cache/vmbase/linux).
if [[ "${1:-}" == linux ]]; then
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/vmbase/linux"
    [[ -s "$cache/Image" && -x "$cache/busybox" ]] && exit 0
    sudo=()
    if ((EUID != 0)); then
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        quietly "${sudo[@]}" dpkg --add-architecture arm64
        quietly "${sudo[@]}" apt-get update -qq
    fi
    staging=$(mktemp -d)
    trap 'rm -rf "$staging"' EXIT
    # As root, apt downloads as its _apt user, which cannot write the private staging directory.
    sandbox=()
    if ((EUID == 0)); then
        sandbox=(-o APT::Sandbox::User=root)
    fi
    # The package linux-image-arm64 depends on, e.g. linux-image-6.1.0-56-arm64:arm64.
    kernel_package() {
        apt-cache depends linux-image-arm64:arm64 2>/dev/null |
            sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1
    }
    download() {
        (cd "$staging" && apt-get download -qq "${sandbox[@]}" "$(kernel_package)" busybox-static:arm64)
    }
    # Package lists that are missing or older than the archive (which dropped the version they
    # name) are refreshed once.
    if [[ -z "$(kernel_package)" ]] || ! download >/dev/null 2>&1; then
        quietly "${sudo[@]}" apt-get update -qq
        [[ -n "$(kernel_package)" ]] || { echo "install-deps: apt knows no linux-image-arm64:arm64" >&2; exit 1; }
        quietly download
    fi
    echo "install-deps: fetched $(kernel_package) and busybox-static:arm64 into $cache"
    # Only the two files the tests use, not the kernel's 300 MB of modules.
    dpkg-deb --fsys-tarfile "$staging"/linux-image-*.deb | tar -x -C "$staging" --wildcards './boot/vmlinuz-*'
    dpkg-deb --fsys-tarfile "$staging"/busybox-static_*.deb | tar -x -C "$staging" ./bin/busybox
    mkdir -p "$cache"
    vmlinuz=$(echo "$staging"/boot/vmlinuz-*)
    # Debian's arm64 vmlinuz is an uncompressed Image today; older or future ones may be gzipped.
    if gzip -t "$vmlinuz" 2>/dev/null; then
        gzip -dc "$vmlinuz" >"$staging/Image"
    else
        mv "$vmlinuz" "$staging/Image"
    fi
    kernel_package >"$cache/kernel-package"
    mv "$staging/bin/busybox" "$cache/busybox"
    # Last, so that an interrupted fetch is retried.
    mv "$staging/Image" "$cache/Image"
fi
