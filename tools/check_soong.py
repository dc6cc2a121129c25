#!/usr/bin/env python3
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
"""Checks the Soong side of the tree: bpfmt-clean Android.bp files, every file they name exists,
every module the README promises is defined, every `:module` and `defaults` reference resolves,
TEST_MAPPING names defined tests, each Rust crate's Cargo dependencies match its Soong rustlibs
(through the table of Android crate names below), and the integration test's rustlibs are exactly
the crates its Android build uses."""

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLUEPRINTS = [ROOT / "Android.bp", ROOT / "example" / "Android.bp", ROOT / "linuxboot" / "Android.bp"]

# Cargo package name -> the Soong module of the same crate in AOSP (no_std variants where AOSP
# has one).
ANDROID_CRATES = {
    "aarch64-paging": "libaarch64_paging",
    "arm-pl011-uart": "libarm_pl011_uart",
    "buddy_system_allocator": "libbuddy_system_allocator",
    "log": "liblog_rust_nostd",
    "safe-mmio": "libsafe_mmio",
    "sha2": "libsha2_nostd",
    "smccc": "libsmccc",
    "spin": "libspin_nostd",
    "virtio-drivers": "libvirtio_drivers",
    "vmbase": "libvmbase",
    "zerocopy": "libzerocopy_nostd",
    "zeroize": "libzeroize_nostd",
}

# Soong module -> the Cargo manifest of the same crate.
RUST_MODULES = {
    "libvmbase": ROOT / "Cargo.toml",
    "libvmbase_example": ROOT / "example" / "Cargo.toml",
    "libvmbase_linuxboot": ROOT / "linuxboot" / "Cargo.toml",
}

REQUIRED_MODULES = {
    "libvmbase": "rust_library_rlib",
    "libvmbase_entry": "cc_library_static",
    "vmbase_sections": "filegroup",
    "libvmbase_headers": "cc_library_headers",
    "libvmbase_example": "rust_ffi_static",
    "vmbase_example": "cc_binary",
    "vmbase_example_bin": "raw_binary",
    "vmbase_example.integration_test": "rust_test",
    "libvmbase_linuxboot": "rust_ffi_static",
    "vmbase_linuxboot": "cc_binary",
    "vmbase_linuxboot_bin": "raw_binary",
}

# The integration test's sources compiled for Android (tests/backend/qemu.rs is the Cargo side),
# and the crates they may name, with their Soong modules.
INTEGRATION_TEST = "vmbase_example.integration_test"
INTEGRATION_TEST_ANDROID_SOURCES = [
    ROOT / "example" / "tests" / path
    for path in ("test.rs", "console.rs", "backend/mod.rs", "backend/android.rs")
]
INTEGRATION_TEST_CRATES = {
    "android_logger": "libandroid_logger",
    "android_system_virtualizationservice": "android.system.virtualizationservice-rust",
    "anyhow": "libanyhow",
    "libc": "liblibc",
    "log": "liblog_rust",
    "nix": "libnix",
    "vmclient": "libvmclient",
}
# What a `use` may start with besides those crates: the standard library and the test's modules.
LOCAL_PATH_ROOTS = {"std", "core", "alloc", "crate", "self", "super", "backend", "console",
                    "android", "qemu"}

# Properties whose entries are files relative to the Android.bp (or `:module` references).
FILE_PROPERTIES = ("srcs", "src", "linker_scripts", "data")

TOKEN = re.compile(
    r'\s*(?:(//[^\n]*|/\*.*?\*/)|("(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_.]*)|(-?\d+)|([{}\[\]:,=+]))',
    re.S,
)


def tokenize(text, path):
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match:
            raise SystemExit(f"{path}: cannot parse at offset {pos}: {text[pos:pos + 20]!r}")
        pos = match.end()
        comment, string, ident, number, punct = match.groups()
        if comment:
            continue
        tokens.append(string and ("str", json.loads(string)) or ident and ("id", ident)
                      or number and ("num", int(number)) or ("p", punct))
    return tokens


class Parser:
    """A recursive-descent parser for the subset of Blueprint these files use."""

    def __init__(self, tokens, path):
        self.tokens, self.pos, self.path = tokens, 0, path

    def next(self):
        if self.pos >= len(self.tokens):
            raise SystemExit(f"{self.path}: unexpected end of file")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def expect(self, punct):
        token = self.next()
        if token != ("p", punct):
            raise SystemExit(f"{self.path}: expected {punct!r}, found {token[1]!r}")

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def value(self):
        kind, text = self.next()
        if kind in ("str", "num"):
            return text
        if kind == "id" and text in ("true", "false"):
            return text == "true"
        if (kind, text) == ("p", "["):
            items = []
            while self.peek() != ("p", "]"):
                items.append(self.value())
                if self.peek() == ("p", ","):
                    self.next()
            self.next()
            return items
        if (kind, text) == ("p", "{"):
            return self.properties()
        raise SystemExit(f"{self.path}: unexpected {text!r}")

    def properties(self):
        props = {}
        while self.peek() != ("p", "}"):
            kind, name = self.next()
            self.expect(":")
            props[name] = self.value()
            if self.peek() == ("p", ","):
                self.next()
        self.next()
        return props

    def modules(self):
        while self.peek() is not None:
            kind, module_type = self.next()
            self.expect("{")
            yield module_type, self.properties()


def check_integration_test_rustlibs(modules):
    """The crates the Android build of the integration test names, against its rustlibs."""
    errors, used = [], set()
    for source in INTEGRATION_TEST_ANDROID_SOURCES:
        text = source.read_text()
        for root in re.findall(r"^\s*(?:pub\s+)?use\s+([A-Za-z_][A-Za-z0-9_]*)", text, re.M):
            if root not in INTEGRATION_TEST_CRATES and root not in LOCAL_PATH_ROOTS:
                errors.append(f"{source}: uses crate {root}, which has no Soong name here")
        used |= {crate for crate in INTEGRATION_TEST_CRATES
                 if re.search(rf"(?<![:\w]){crate}::", text)}
    expected = {INTEGRATION_TEST_CRATES[crate] for crate in used}
    soong = set(modules.get(INTEGRATION_TEST, (None, {}))[1].get("rustlibs", []))
    for missing in sorted(expected - soong):
        errors.append(f"{INTEGRATION_TEST}: its Android sources use {missing}, not in rustlibs")
    for extra in sorted(soong - expected):
        errors.append(f"{INTEGRATION_TEST}: rustlibs entry {extra} is not used by its Android sources")
    return errors


def main():
    errors = []
    unformatted = subprocess.run(["bpfmt", "-l", *map(str, BLUEPRINTS)], capture_output=True,
                                 text=True, check=True).stdout.split()
    errors += [f"{path}: not bpfmt-clean (run `bpfmt -w {path}`)" for path in unformatted]

    modules = {}
    for path in BLUEPRINTS:
        tokens = tokenize(path.read_text(), path)
        for module_type, props in Parser(tokens, path).modules():
            if module_type == "package":
                continue
            modules[props["name"]] = (module_type, props, path)

    for name, (module_type, props, path) in modules.items():
        for prop in FILE_PROPERTIES:
            entries = props.get(prop, [])
            for entry in [entries] if isinstance(entries, str) else entries:
                if entry.startswith(":"):
                    if entry[1:] not in modules:
                        errors.append(f"{path}: {name}.{prop} refers to unknown module {entry}")
                elif not (path.parent / entry).is_file():
                    errors.append(f"{path}: {name}.{prop} names missing file {entry}")
        for directory in props.get("export_include_dirs", []):
            if not (path.parent / directory).is_dir():
                errors.append(f"{path}: {name}.export_include_dirs names missing folder {directory}")
        for dependency in (props.get("defaults", []) + props.get("static_libs", [])
                           + props.get("header_libs", [])):
            if dependency not in modules:
                errors.append(f"{path}: {name} refers to undefined module {dependency}")

    for name, module_type in REQUIRED_MODULES.items():
        if modules.get(name, (None,))[0] != module_type:
            errors.append(f"module {name} ({module_type}) is not defined")

    for name, manifest in RUST_MODULES.items():
        cargo = set(tomllib.loads(manifest.read_text()).get("dependencies", {}))
        expected = {ANDROID_CRATES.get(dep, f"<no Soong name for {dep}>") for dep in cargo}
        soong = set(modules[name][1].get("rustlibs", []))
        for missing in sorted(expected - soong):
            errors.append(f"{name}: Cargo dependency has no rustlibs entry {missing}")
        for extra in sorted(soong - expected):
            errors.append(f"{name}: rustlibs entry {extra} is not a Cargo dependency")

    errors += check_integration_test_rustlibs(modules)

    mapping = json.loads((ROOT / "TEST_MAPPING").read_text())
    for group in mapping.values():
        for test in group:
            if modules.get(test["name"], (None,))[0] != "rust_test":
                errors.append(f"TEST_MAPPING: {test['name']} is not a rust_test module")

    for error in errors:
        print(f"check_soong: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"check_soong: {len(modules)} modules in {len(BLUEPRINTS)} Android.bp files are consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
