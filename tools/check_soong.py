#!/usr/bin/env python3
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
"""Checks the Soong side of the tree against one AOSP release, Android 15 (android-15.0.0_r1):

- every module type, and every property of every module (nested groups and `arch`/`target`/
  `multilib` variants included), is one that release's Soong accepts (tools/soong/RELEASE/
  schema.json, extracted from build/soong's property structs by tools/soong_schema.py);
- every module a property names (`rustlibs`, `static_libs`, `defaults`, `":module"` in `srcs`,
  `data`, ...) is defined here or exists in that release (tools/soong/RELEASE/modules.json); a name
  the release lacks is an error;
- each crate Soong builds declares a `rust-version` no newer than the release's rustc;
- the root Android.bp declares a `soong_namespace` first; bpfmt-clean files; every file they name
  exists; the modules the README promises are defined; TEST_MAPPING names rust_test modules;
  each Rust crate's Cargo dependencies match its rustlibs (through the table of Android crate
  names below); the integration test's rustlibs are exactly the crates its Android sources use.

Every error names the file and line."""

import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = "android-15.0.0_r1"
RELEASE_DATA = ROOT / "tools" / "soong" / RELEASE
BLUEPRINTS = [ROOT / "Android.bp", ROOT / "example" / "Android.bp", ROOT / "linuxboot" / "Android.bp",
              ROOT / "testing" / "console_check" / "Android.bp"]

# Cargo package name -> the Soong module of the same crate in the release (no_std variants where
# it has one).
ANDROID_CRATES = {
    "aarch64-paging": "libaarch64_paging",
    "buddy_system_allocator": "libbuddy_system_allocator",
    "log": "liblog_rust_nostd",
    "smccc": "libsmccc",
    "spin": "libspin_nostd",
    "virtio-drivers": "libvirtio_drivers",
    "vmbase": "libvmbase",
    "vmbase_linuxboot_checks": "libvmbase_linuxboot_checks",
    "zeroize": "libzeroize_nostd",
}

# Soong module -> the Cargo manifest of the same crate.
RUST_MODULES = {
    "libvmbase": ROOT / "Cargo.toml",
    "libvmbase.test": ROOT / "Cargo.toml",
    "libvmbase_example": ROOT / "example" / "Cargo.toml",
    "libvmbase_linuxboot": ROOT / "linuxboot" / "Cargo.toml",
    "libvmbase_linuxboot_checks": ROOT / "linuxboot" / "checks" / "Cargo.toml",
    "libvmbase_console_check": ROOT / "testing" / "console_check" / "Cargo.toml",
}

REQUIRED_MODULES = {
    "libvmbase": "rust_library_rlib",
    "libvmbase.test": "rust_test",
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
    for path in ("test.rs", "backend/mod.rs", "backend/android.rs")
]
INTEGRATION_TEST_CRATES = {
    "android_logger": "libandroid_logger",
    "android_system_virtualizationservice": "android.system.virtualizationservice-rust",
    "anyhow": "libanyhow",
    "libc": "liblibc",
    "log": "liblog_rust",
    "nix": "libnix",
    "vmbase_console_check": "libvmbase_console_check",
    "vmclient": "libvmclient",
}
# What a `use` may start with besides those crates: the standard library and the test's modules.
LOCAL_PATH_ROOTS = {"std", "core", "alloc", "crate", "self", "super", "backend", "android",
                    "qemu"}

# Properties whose entries are files relative to the Android.bp, or `:module` references.
FILE_PROPERTIES = ("srcs", "src", "linker_scripts", "data")
# Properties whose entries are module names.
MODULE_PROPERTIES = ("defaults", "rustlibs", "rlibs", "static_libs", "whole_static_libs",
                     "shared_libs", "header_libs", "stdlibs", "proc_macros", "data_bins",
                     "data_libs", "required")
# The groups Soong creates per architecture, OS or bitness (android/arch.go).
ARCH_GROUPS = ("arch", "target", "multilib")

TOKEN = re.compile(
    r'\s*(?:(//[^\n]*|/\*.*?\*/)|("(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_.]*)|(-?\d+)|([{}\[\]:,=+]))',
    re.S,
)


@dataclass
class Value:
    """A Blueprint value and the line it starts on."""
    value: object
    line: int


@dataclass
class Module:
    module_type: str
    props: dict
    path: Path
    line: int

    @property
    def name(self):
        name = self.props.get("name")
        return name.value if name else None


def show(path):
    """A path as messages give it: relative to the repository when inside it."""
    path = Path(path)
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def tokenize(text, path):
    """(kind, text, line) tokens of a Blueprint file, comments dropped."""
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match:
            line = text.count("\n", 0, pos) + 1
            raise SystemExit(f"{show(path)}:{line}: cannot parse {text[pos:pos + 20]!r}")
        start = match.start(match.lastindex) if match.lastindex else match.start()
        line = text.count("\n", 0, start) + 1
        pos = match.end()
        comment, string, ident, number, punct = match.groups()
        if comment:
            continue
        kind, token = (("str", json.loads(string)) if string else ("id", ident) if ident
                       else ("num", int(number)) if number else ("p", punct))
        tokens.append((kind, token, line))
    return tokens


class Parser:
    """A recursive-descent parser for the subset of Blueprint these files use, keeping lines."""

    def __init__(self, tokens, path):
        self.tokens, self.pos, self.path = tokens, 0, path

    def fail(self, message):
        line = self.tokens[min(self.pos, len(self.tokens) - 1)][2] if self.tokens else 1
        raise SystemExit(f"{show(self.path)}:{line}: {message}")

    def next(self):
        if self.pos >= len(self.tokens):
            self.fail("unexpected end of file")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def expect(self, punct):
        kind, text, _ = self.next()
        if (kind, text) != ("p", punct):
            self.pos -= 1
            self.fail(f"expected {punct!r}, found {text!r}")

    def peek(self):
        return self.tokens[self.pos][:2] if self.pos < len(self.tokens) else None

    def value(self):
        kind, text, line = self.next()
        if kind in ("str", "num"):
            return Value(text, line)
        if kind == "id" and text in ("true", "false"):
            return Value(text == "true", line)
        if (kind, text) == ("p", "["):
            items = []
            while self.peek() != ("p", "]"):
                items.append(self.value())
                if self.peek() == ("p", ","):
                    self.next()
            self.next()
            return Value(items, line)
        if (kind, text) == ("p", "{"):
            return Value(self.properties(), line)
        self.pos -= 1
        self.fail(f"unexpected {text!r}")

    def properties(self):
        props = {}
        while self.peek() != ("p", "}"):
            _, name, _ = self.next()
            self.expect(":")
            props[name] = self.value()
            if self.peek() == ("p", ","):
                self.next()
        self.next()
        return props

    def modules(self):
        while self.peek() is not None:
            _, module_type, line = self.next()
            self.expect("{")
            yield Module(module_type, self.properties(), self.path, line)


def parse_blueprint(path):
    return list(Parser(tokenize(path.read_text(), path), path).modules())


def load_release(data_dir=RELEASE_DATA):
    """The release's schema (module type -> accepted properties, arch-variant ones, arch groups)
    and its module list."""
    schema = json.loads((data_dir / "schema.json").read_text())
    modules = json.loads((data_dir / "modules.json").read_text())
    types = {}
    for module_type, description in schema["module_types"].items():
        accepted, variant = set(), set()
        for struct in description["structs"]:
            accepted |= set(schema["structs"][struct]["properties"])
            variant |= set(schema["structs"][struct]["arch_variant"])
        types[module_type] = (accepted, variant, description["arch_variants"])
    return {"release": schema["release"], "rust_version": schema["rust_default_version"],
            "types": types, "arch_groups": schema["arch_groups"],
            "dynamic_groups": set(schema["dynamic_groups"]), "modules": modules["modules"]}


def flatten(props, prefix=""):
    """(dotted property name, Value) of every leaf property; a map value is a group."""
    for name, value in props.items():
        if isinstance(value.value, dict):
            yield from flatten(value.value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def check_properties(module, release):
    """A property Soong would reject: unknown module type, unknown property, a property set per
    architecture that Soong does not vary, or an architecture group key it does not know."""
    errors, where = [], f"{show(module.path)}:{module.line}"
    if module.module_type not in release["types"]:
        return [f"{where}: module type {module.module_type} does not exist in {release['release']}"]
    accepted, variant, has_arch = release["types"][module.module_type]
    for name, value in module.props.items():
        if name in release["dynamic_groups"]:
            continue
        if name in ARCH_GROUPS and has_arch and isinstance(value.value, dict):
            for key, group in value.value.items():
                if key not in release["arch_groups"][name]:
                    errors.append(f"{show(module.path)}:{group.line}: {module.module_type} "
                                  f"{module.name}: {name}.{key} is not a {name} Soong knows")
                    continue
                if not isinstance(group.value, dict):
                    errors.append(f"{show(module.path)}:{group.line}: {name}.{key} must be a map")
                    continue
                for prop, leaf in flatten(group.value):
                    if prop not in accepted:
                        errors.append(f"{show(module.path)}:{leaf.line}: {module.module_type} "
                                      f"{module.name}: unknown property {name}.{key}.{prop} in "
                                      f"{release['release']}")
                    elif prop not in variant:
                        errors.append(f"{show(module.path)}:{leaf.line}: {module.module_type} "
                                      f"{module.name}: {prop} cannot vary by {name} in "
                                      f"{release['release']}")
            continue
        for prop, leaf in flatten({name: value}):
            if prop not in accepted:
                errors.append(f"{show(module.path)}:{leaf.line}: {module.module_type} {module.name}: "
                              f"unknown property {prop} in {release['release']}")
    return errors


def references(module):
    """(property, module name, Value) of every module a module names, arch groups included."""
    def walk(props, prefix):
        for name, value in props.items():
            if name in ARCH_GROUPS and isinstance(value.value, dict):
                for key, group in value.value.items():
                    if isinstance(group.value, dict):
                        yield from walk(group.value, f"{prefix}{name}.{key}.")
                continue
            entries = value.value if isinstance(value.value, list) else [value]
            if name in MODULE_PROPERTIES:
                for entry in entries:
                    yield f"{prefix}{name}", entry.value, entry
            elif name in FILE_PROPERTIES:
                for entry in entries:
                    if isinstance(entry.value, str) and entry.value.startswith(":"):
                        yield f"{prefix}{name}", entry.value[1:].split("{")[0], entry
    yield from walk(module.props, "")


def check_references(modules, release):
    """Errors for names that exist neither here nor in the release."""
    ours = {module.name for module in modules}
    errors = []
    for module in modules:
        for prop, name, value in references(module):
            where = f"{show(module.path)}:{value.line}: {module.name}.{prop}"
            if name in ours or name in release["modules"]:
                continue
            errors.append(f"{where} names {name}, which is neither defined here nor a module "
                          f"of {release['release']}")
    return errors


def check_namespace(root_modules, path):
    """The root Android.bp opens with a soong_namespace, so the tree's names (libvmbase,
    vmbase_example, ...) do not clash with packages/modules/Virtualization's."""
    first = next((module for module in root_modules), None)
    if first is None or first.module_type != "soong_namespace":
        return [f"{show(path)}:1: the root Android.bp must declare a soong_namespace first"]
    return []


def check_files(modules):
    errors = []
    for module in modules:
        for prop in FILE_PROPERTIES:
            value = module.props.get(prop)
            entries = [] if value is None else value.value if isinstance(value.value, list) else [value]
            for entry in entries:
                if entry.value.startswith(":"):
                    continue
                # Soong expands `*` and `**` in file lists; a pattern must match something.
                if "*" in entry.value:
                    found = any(path.is_file() for path in module.path.parent.glob(entry.value))
                else:
                    found = (module.path.parent / entry.value).is_file()
                if not found:
                    errors.append(f"{show(module.path)}:{entry.line}: {module.name}.{prop} names missing "
                                  f"file {entry.value}")
        value = module.props.get("export_include_dirs")
        for entry in value.value if value else []:
            if not (module.path.parent / entry.value).is_dir():
                errors.append(f"{show(module.path)}:{entry.line}: {module.name}.export_include_dirs names "
                              f"missing folder {entry.value}")
    return errors


def strings(module, prop, by_name=None):
    """A list property's strings, with those its `defaults` modules give when `by_name` (name ->
    module) is passed; Soong appends a module's own list to its defaults'."""
    inherited = []
    if by_name is not None:
        for name in strings(module, "defaults"):
            if name in by_name:
                inherited += strings(by_name[name], prop, by_name)
    value = module.props.get(prop)
    return inherited + ([entry.value for entry in value.value] if value else [])


def cargo_dependencies(manifest, features):
    """The crates a Cargo manifest depends on with `features` enabled (and its default features
    only if `default` is among them): optional ones only when a feature turns them on."""
    cargo = tomllib.loads(manifest.read_text())
    enabled, pending = set(), list(features)
    while pending:
        feature = pending.pop()
        if feature in enabled:
            continue
        enabled.add(feature)
        pending += [item for item in cargo.get("features", {}).get(feature, [])
                    if not item.startswith("dep:")]
    dependencies = set()
    for name, spec in cargo.get("dependencies", {}).items():
        optional = isinstance(spec, dict) and spec.get("optional", False)
        turned_on = name in enabled or any(
            f"dep:{name}" in cargo.get("features", {}).get(feature, []) for feature in enabled)
        if not optional or turned_on:
            dependencies.add(name)
    return dependencies


def check_cargo_consistency(by_name):
    """Each Rust crate's Cargo dependencies, with the features Soong enables, against its
    rustlibs."""
    errors = []
    for name, manifest in RUST_MODULES.items():
        module = by_name[name]
        cargo = cargo_dependencies(manifest, strings(module, "features", by_name))
        expected = {ANDROID_CRATES.get(dep, f"<no Soong name for {dep}>") for dep in cargo}
        soong = set(strings(module, "rustlibs", by_name))
        where = f"{show(module.path)}:{module.line}: {name}"
        for missing in sorted(expected - soong):
            errors.append(f"{where}: Cargo dependency has no rustlibs entry {missing}")
        for extra in sorted(soong - expected):
            errors.append(f"{where}: rustlibs entry {extra} is not a Cargo dependency")
    return errors


def check_integration_test_rustlibs(by_name):
    """The crates the Android build of the integration test names, against its rustlibs."""
    errors, used = [], set()
    for source in INTEGRATION_TEST_ANDROID_SOURCES:
        text = source.read_text()
        for root in re.findall(r"^\s*(?:pub\s+)?use\s+([A-Za-z_][A-Za-z0-9_]*)", text, re.M):
            if root not in INTEGRATION_TEST_CRATES and root not in LOCAL_PATH_ROOTS:
                errors.append(f"{show(source)}: uses crate {root}, which has no Soong name here")
        used |= {crate for crate in INTEGRATION_TEST_CRATES
                 if re.search(rf"(?<![:\w]){crate}::", text)}
    expected = {INTEGRATION_TEST_CRATES[crate] for crate in used}
    soong = set(strings(by_name[INTEGRATION_TEST], "rustlibs"))
    for missing in sorted(expected - soong):
        errors.append(f"{INTEGRATION_TEST}: its Android sources use {missing}, not in rustlibs")
    for extra in sorted(soong - expected):
        errors.append(f"{INTEGRATION_TEST}: rustlibs entry {extra} is not used by its Android sources")
    return errors


def check_test_environment(modules):
    """Errors for rust_test sources that need `env!("CARGO_MANIFEST_DIR")`: Soong sets no such
    variable (android-15.0.0_r1 rust/builder.go sets only CARGO_CRATE_NAME, CARGO_PKG_NAME,
    CARGO_PKG_VERSION* and CARGO_BIN_NAME, with cargo_env_compat), so they do not compile there.
    `option_env!` compiles in both."""
    errors, by_name = [], {module.name: module for module in modules}
    for module in modules:
        srcs = strings(module, "srcs", by_name)
        if module.module_type != "rust_test" or not srcs:
            continue
        crate_dir = (module.path.parent / srcs[0]).parent
        for source in sorted(crate_dir.rglob("*.rs")):
            for number, line in enumerate(source.read_text().splitlines(), 1):
                if re.search(r'(?<!option_)env!\("CARGO_MANIFEST_DIR"\)', line):
                    errors.append(f"{show(source)}:{number}: {module.name} reads "
                                  "CARGO_MANIFEST_DIR, which Soong does not set")
    return errors


def check_rust_version(release, manifests=None):
    """Errors for a crate Soong builds whose Cargo manifest does not declare a `rust-version` at
    most the release's rustc: the declaration is what makes clippy flag newer APIs
    (`incompatible_msrv`) in every Cargo build, and tools/build_as_soong.py compiles them with
    that rustc."""
    errors = []

    def version(text):
        return tuple(int(part) for part in text.split("."))[:2]

    for manifest in sorted(set(manifests or RUST_MODULES.values())):
        declared = tomllib.loads(manifest.read_text())["package"].get("rust-version")
        if declared is None or version(declared) > version(release["rust_version"]):
            errors.append(f"{show(manifest)}: rust-version is {declared or 'not set'}; "
                          f"{release['release']}'s Soong builds with {release['rust_version']} "
                          "(rust/config/global.go)")
    return errors


def check_blueprints(paths, release):
    """(modules, errors) of a set of Android.bp files, the first one the root."""
    modules_by_file = {path: parse_blueprint(path) for path in paths}
    errors = check_namespace(modules_by_file[paths[0]], paths[0])
    modules = [module for found in modules_by_file.values() for module in found
               if module.module_type not in ("package", "soong_namespace")]
    for module in (module for found in modules_by_file.values() for module in found):
        errors += check_properties(module, release)
    seen = {}
    for module in modules:
        if module.name in seen:
            errors.append(f"{show(module.path)}:{module.line}: module {module.name} is defined twice "
                          f"(first at {seen[module.name]})")
        seen.setdefault(module.name, f"{show(module.path)}:{module.line}")
    reference_errors = check_references(modules, release)
    errors += check_test_environment(modules)
    return modules, errors + reference_errors + check_files(modules)


def main():
    release = load_release()
    unformatted = subprocess.run(["bpfmt", "-l", *map(str, BLUEPRINTS)], capture_output=True,
                                 text=True, check=True).stdout.split()
    errors = [f"{path}: not bpfmt-clean (run `bpfmt -w {path}`)" for path in unformatted]
    modules, found = check_blueprints(BLUEPRINTS, release)
    errors += check_rust_version(release)
    errors += found
    by_name = {module.name: module for module in modules}
    for name, module_type in REQUIRED_MODULES.items():
        if name not in by_name or by_name[name].module_type != module_type:
            errors.append(f"module {name} ({module_type}) is not defined")
    if not errors:
        errors += check_cargo_consistency(by_name)
        errors += check_integration_test_rustlibs(by_name)
    mapping = json.loads((ROOT / "TEST_MAPPING").read_text())
    for group in mapping.values():
        for test in group:
            if test["name"] not in by_name or by_name[test["name"]].module_type != "rust_test":
                errors.append(f"TEST_MAPPING: {test['name']} is not a rust_test module")

    for error in errors:
        print(f"check_soong: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"check_soong: {len(modules)} modules in {len(BLUEPRINTS)} Android.bp files are valid "
          f"for {release['release']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
