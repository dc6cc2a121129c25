#!/usr/bin/env python3
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
"""Compiles the tree's Rust modules the way Android 15's Soong (android-15.0.0_r1) would, without
an AOSP checkout, and fails on the first module that does not compile:

- with the release's rustc (1.78.0, its RustDefaultVersion), installed through rustup;
- for Soong's arm64 device target, aarch64-linux-android, with `-C panic=abort`;
- against the release's crates at the versions it ships (tools/soong/RELEASE/crates, built once
  with Cargo and that rustc);
- from what the Android.bp files say, defaults included: each module's crate_name, first source,
  edition, crate type (rust_library_rlib: rlib, rust_ffi_static: staticlib, rust_test: a test
  harness, type-checked only since linking it needs the NDK), rustlibs, features and cfgs;
- with no build script and no Cargo environment, as Soong runs neither.

The integration test, whose rustlibs exist only in AOSP (libvmclient, VirtualizationService's
AIDL), is reported as not built; any other module that cannot be built is an error. The tree's Cargo.lock must resolve every crate of the release that
the tree uses to the release's version: Cargo builds the same sources at the same versions."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_soong  # noqa: E402  (the Android.bp parser and the table of crate names)

ROOT = check_soong.ROOT
RELEASE = check_soong.RELEASE
RUSTC_VERSION = "1.78.0"
TARGET = "aarch64-linux-android"
CRATES = check_soong.RELEASE_DATA / "crates"
BUILD_DIR = ROOT / "target" / "android15"
CRATE_TYPES = {"rust_library_rlib": "rlib", "rust_ffi_static": "staticlib", "rust_test": "test"}


def release_crates():
    """Cargo package name -> version, as the release's crate list pins them."""
    lock = tomllib.loads((CRATES / "Cargo.lock").read_text())
    wanted = tomllib.loads((CRATES / "Cargo.toml").read_text())["dependencies"]
    return {package["name"]: package["version"] for package in lock["package"]
            if package["name"] in wanted}


def tree_versions(lock_path, users):
    """Cargo package name -> the versions the `users` packages depend on in a Cargo.lock."""
    packages = tomllib.loads(lock_path.read_text())["package"]
    versions = {}
    for package in packages:
        versions.setdefault(package["name"], []).append(package["version"])
    used = {}
    for package in packages:
        if package["name"] not in users:
            continue
        for dependency in package.get("dependencies", []):
            name, _, version = dependency.partition(" ")
            used.setdefault(name, set()).update([version] if version else versions[name])
    return used


def check_versions(release, used):
    """Errors for each release crate the tree resolves to another version."""
    errors = []
    for name, version in sorted(release.items()):
        if name in used and used[name] != {version}:
            errors.append(f"Cargo.lock: the tree builds {name} {', '.join(sorted(used[name]))}; "
                          f"{RELEASE} ships {version} (tools/soong/{RELEASE}/crates)")
    return errors


def rustc_command(module, crate_type, by_name, externs, out_dir):
    """The rustc command line for a module, or None with the reason it cannot be built here."""
    name = module.name
    srcs = check_soong.strings(module, "srcs", by_name)
    # A scalar property comes from the module, else from its nearest defaults that set it.
    sources = [module, *defaults_of(module, by_name)]
    crate_name = next((m.props["crate_name"].value for m in sources if "crate_name" in m.props),
                      None)
    edition = next((m.props["edition"].value for m in sources if "edition" in m.props), "2021")
    command = ["rustc", f"+{RUSTC_VERSION}", "--target", TARGET, "--edition", edition,
               "--crate-name", crate_name, "-C", "debuginfo=0",
               "-L", f"dependency={BUILD_DIR / TARGET / 'release' / 'deps'}",
               # Proc-macro crates (zerocopy's derive, for virtio-drivers) run on the host.
               "-L", f"dependency={BUILD_DIR / 'release' / 'deps'}",
               "-L", f"dependency={out_dir}"]
    # Tests unwind (libtest needs it); device code aborts, as Soong builds it.
    if crate_type == "test":
        command += ["--test", "--emit", "metadata", "-o", str(out_dir / f"{name}.rmeta")]
    else:
        command += ["-C", "panic=abort", "--crate-type", crate_type, "--emit", "link", "-o",
                    str(out_dir / f"lib{crate_name}.{'a' if crate_type == 'staticlib' else 'rlib'}")]
    for feature in check_soong.strings(module, "features", by_name):
        command += ["--cfg", f'feature="{feature}"']
    for cfg in check_soong.strings(module, "cfgs", by_name):
        command += ["--cfg", cfg]
    for lib in check_soong.strings(module, "rustlibs", by_name):
        if lib not in externs:
            return None, f"its rustlibs entry {lib} exists only in AOSP"
        command += ["--extern", f"{externs[lib][0]}={externs[lib][1]}"]
    return command + [str(module.path.parent / srcs[0])], None


def defaults_of(module, by_name):
    """The module's defaults modules, nearest first, recursively."""
    found = []
    for name in check_soong.strings(module, "defaults"):
        if name in by_name:
            found.append(by_name[name])
            found += defaults_of(by_name[name], by_name)
    return found


def build_release_crates():
    """{Soong module name: (crate name, rlib)} of the release's crates, built with its rustc."""
    command = ["cargo", f"+{RUSTC_VERSION}", "build", "--quiet", "--release", "--locked",
               "--target", TARGET, "--manifest-path", str(CRATES / "Cargo.toml"),
               "--message-format", "json"]
    result = subprocess.run(command, env={**os.environ, "CARGO_TARGET_DIR": str(BUILD_DIR)},
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"build_as_soong: building {RELEASE}'s crates failed:\n{result.stderr}")
    rlibs = {}
    for line in result.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and "lib" in message["target"]["kind"]:
            rlib = next(f for f in message["filenames"] if f.endswith(".rlib"))
            rlibs[message["target"]["name"].replace("-", "_")] = rlib
    externs = {}
    for package, module in check_soong.ANDROID_CRATES.items():
        crate = package.replace("-", "_")
        if crate in rlibs:
            externs[module] = (crate, rlibs[crate])
    return externs


def build_order(modules, by_name):
    """The Rust modules this tree defines that Soong compiles, each after the tree's rustlibs."""
    rust = [m for m in modules if m.module_type in CRATE_TYPES
            and check_soong.strings(m, "srcs", by_name)]
    order, placed = [], set()
    while len(order) < len(rust):
        progress = False
        for module in rust:
            local = [lib for lib in check_soong.strings(module, "rustlibs", by_name)
                     if lib in by_name]
            if module.name not in placed and all(lib in placed for lib in local):
                order.append(module)
                placed.add(module.name)
                progress = True
        if not progress:
            sys.exit("build_as_soong: the tree's rustlibs form a cycle")
    return order


def main():
    release = release_crates()
    errors = check_versions(release, tree_versions(
        ROOT / "Cargo.lock", {"vmbase", "vmbase_example", "vmbase_linuxboot",
                              "vmbase_linuxboot_checks"}))
    if errors:
        print("\n".join(f"build_as_soong: {error}" for error in errors), file=sys.stderr)
        return 1
    modules, _ = check_soong.check_blueprints(check_soong.BLUEPRINTS,
                                                 check_soong.load_release())
    by_name = {module.name: module for module in modules}
    externs = build_release_crates()
    out_dir = BUILD_DIR / "modules"
    out_dir.mkdir(parents=True, exist_ok=True)
    # Soong passes no Cargo variables beyond the crate's name and version (rust/builder.go).
    env = {key: value for key, value in os.environ.items() if not key.startswith("CARGO")}
    built, skipped = [], []
    for module in build_order(modules, by_name):
        crate_type = CRATE_TYPES[module.module_type]
        command, why_not = rustc_command(module, crate_type, by_name, externs, out_dir)
        if command is None:
            if module.name != check_soong.INTEGRATION_TEST:
                print(f"build_as_soong: {module.name} cannot be built: {why_not}", file=sys.stderr)
                return 1
            skipped.append(f"{module.name} ({why_not}; it boots VMs through VirtualizationService)")
            continue
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            print(f"build_as_soong: {module.name} does not compile with {RELEASE}'s rustc "
                  f"{RUSTC_VERSION} and crates", file=sys.stderr)
            return 1
        if crate_type == "rlib":
            crate_name = command[command.index("--crate-name") + 1]
            externs[module.name] = (crate_name, out_dir / f"lib{crate_name}.rlib")
        built.append(module.name)
    print(f"build_as_soong: {len(built)} modules compile as {RELEASE}'s Soong builds them "
          f"(rustc {RUSTC_VERSION}, {TARGET}, its crates): {', '.join(built)}")
    for entry in skipped:
        print(f"build_as_soong: not built here: {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
