#!/usr/bin/env bash
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
#
# Installs what building and booting vmbase needs, if it is missing: Debian packages for QEMU,
# clang/LLVM (assembler, archiver, objcopy), bpfmt, gdb-multiarch (for `vm run --gdb`) and dtc
# (for the FDT tests' round trips), and the Rust toolchain and targets (bare metal, static
# aarch64 Linux) that rust-toolchain.toml pins, and Android 15's rustc 1.78 for aarch64-linux-android
# (tools/build_as_soong.py). With `linux` or `qemu-arm64`, also Debian's
# arm64 kernel and busybox, or Debian's arm64 QEMU with its libraries, for the tests that boot
# Linux or nest KVM (see the end). Quiet and idempotent: prints only what it installs.
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

# rustup installs the toolchain, components and targets rust-toolchain.toml names: the bare-metal
# target for the guests, and static aarch64 Linux for `vm` on arm64 hosts.
toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
targets=(aarch64-unknown-none aarch64-unknown-linux-musl)
installed_targets=$(rustup target list --installed --toolchain "$toolchain" 2>/dev/null || true)
for target in "${targets[@]}"; do
    if ! grep -qx "$target" <<<"$installed_targets"; then
        echo "install-deps: installing Rust $toolchain for ${targets[*]}"
        quietly rustup toolchain install "$toolchain" --profile minimal -c clippy -c rustfmt
        quietly rustup target add --toolchain "$toolchain" "${targets[@]}"
        break
    fi
done

# Android 15's rustc and its arm64 device target, which tools/build_as_soong.py (make lint)
# compiles the Soong modules with: the version Soong's rust/config/global.go names at that release.
android_rust=1.78.0
if ! rustup target list --installed --toolchain "$android_rust" 2>/dev/null | grep -qx aarch64-linux-android; then
    echo "install-deps: installing Rust $android_rust for aarch64-linux-android (Android 15's rustc)"
    quietly rustup toolchain install "$android_rust" --profile minimal
    quietly rustup target add --toolchain "$android_rust" aarch64-linux-android
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

# The arm64 fetches below unpack Debian packages into a cache outside the repository, once:
# $XDG_CACHE_HOME/vmbase (default ~/.cache/vmbase). Each writes its marker file last, so that an
# interrupted fetch is retried.
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/vmbase"

# Prepares apt for arm64 downloads into a fresh $staging directory, removed on exit.
prepare_arm64_download() {
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
}

# Downloads the packages that `$1` (a function) names into $staging. Package lists that are
# missing or older than the archive (which dropped the version they name) are refreshed once.
download_arm64() {
    local packages
    download() {
        packages=$("$1") && [[ -n "$packages" ]] &&
            (cd "$staging" && apt-get download -qq "${sandbox[@]}" $packages)
    }
    if ! download "$1" >/dev/null 2>&1; then
        quietly "${sudo[@]}" apt-get update -qq
        [[ -n "$("$1")" ]] || { echo "install-deps: apt knows no arm64 packages for $1" >&2; exit 1; }
        quietly download "$1"
    fi
}

# With `linux`: Debian's arm64 kernel and a static busybox, for the tests that boot Linux, in
# $cache_root/linux. The kernel package is whatever `linux-image-arm64` depends on today
# (Debian's archive drops superseded point releases, so no version is pinned).
fetch_linux() {
    local cache="$cache_root/linux"
    [[ -s "$cache/Image" && -x "$cache/busybox" ]] && return
    prepare_arm64_download
    # The package linux-image-arm64 depends on, e.g. linux-image-6.1.0-56-arm64:arm64.
    kernel_package() {
        apt-cache depends linux-image-arm64:arm64 2>/dev/null |
            sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -n 1
    }
    kernel_and_busybox() {
        local kernel
        kernel=$(kernel_package) && [[ -n "$kernel" ]] && echo "$kernel busybox-static:arm64"
    }
    download_arm64 kernel_and_busybox
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
    mv "$staging/Image" "$cache/Image"
}

# With `qemu-arm64`: Debian's arm64 qemu-system-aarch64 and the shared libraries it loads, for
# the nested-KVM tests, which run it inside an arm64 Linux VM: $cache_root/qemu-arm64 holds
# `qemu-system-aarch64`, `lib/` (its library closure, with glibc's dynamic loader
# `ld-linux-aarch64.so.1`) and `package` (the QEMU package's version).
fetch_qemu_arm64() {
    local cache="$cache_root/qemu-arm64"
    [[ -x "$cache/qemu-system-aarch64" && -s "$cache/lib/ld-linux-aarch64.so.1" ]] && return
    prepare_arm64_download
    # qemu-system-arm and every arm64 package it needs, recursively (about 100).
    qemu_packages() {
        apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
            --no-replaces --no-enhances qemu-system-arm:arm64 2>/dev/null |
            grep -x '[^ <].*:arm64' | sort -u | tr '\n' ' '
    }
    download_arm64 qemu_packages
    local root="$staging/root" deb
    mkdir -p "$root" "$staging/lib"
    for deb in "$staging"/*.deb; do
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$root"
    done
    local qemu="$root/usr/bin/qemu-system-aarch64"
    [[ -x "$qemu" ]] || { echo "install-deps: qemu-system-arm:arm64 has no qemu-system-aarch64" >&2; exit 1; }
    # The library closure: what qemu-system-aarch64 names as NEEDED, what those name, and so on,
    # each found in the unpacked packages' multiarch directories.
    local pending=("$qemu") library found
    while ((${#pending[@]})); do
        local elf=${pending[0]}
        pending=("${pending[@]:1}")
        for library in $(llvm-readelf --dynamic-table "$elf" |
            sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            [[ -e "$staging/lib/$library" ]] && continue
            found=$(find "$root/lib/aarch64-linux-gnu" "$root/usr/lib/aarch64-linux-gnu" \
                -name "$library" 2>/dev/null | head -n 1)
            [[ -n "$found" ]] || { echo "install-deps: no arm64 package gave $library, which $(basename "$elf") needs" >&2; exit 1; }
            cp -L "$found" "$staging/lib/$library"
            pending+=("$staging/lib/$library")
        done
    done
    cp -L "$root/lib/ld-linux-aarch64.so.1" "$staging/lib/ld-linux-aarch64.so.1"
    mkdir -p "$cache"
    rm -rf "$cache/lib"
    mv "$staging/lib" "$cache/lib"
    dpkg-deb --field "$staging"/qemu-system-arm_*.deb Version >"$cache/package"
    echo "install-deps: fetched qemu-system-arm:arm64 $(cat "$cache/package") and its $(ls "$cache/lib" | wc -l) libraries into $cache"
    mv "$qemu" "$cache/qemu-system-aarch64"
}

case "${1:-}" in
    "") ;;
    linux) fetch_linux ;;
    qemu-arm64) fetch_qemu_arm64 ;;
    *) echo "install-deps: unknown argument $1 (linux or qemu-arm64)" >&2; exit 1 ;;
esac
