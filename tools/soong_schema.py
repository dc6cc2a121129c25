#!/usr/bin/env python3
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
"""Extracts the property names Soong accepts for the module types vmbase's Android.bp files use,
from a git checkout of AOSP's build/soong at one release tag, into tools/soong/<tag>/schema.json.

Soong rejects a property that no struct registered on the module (with AddProperties) has a field
for. This script reads those Go structs, not Soong's code paths: which structs each module type
registers is stated below (FAMILIES, per module type), read off each factory at the tag; the
script then parses the structs themselves, so a field renamed, added or removed between releases
changes the schema. Property names follow Blueprint's rule: the Go field name with its first
letter lowercased; embedded structs are flattened, struct-typed fields become nested property
groups (`sanitize.hwaddress`), fields tagged `blueprint:"mutated"` are not settable.

Usage: tools/soong_schema.py SOONG_GIT_DIR TAG  (writes tools/soong/TAG/schema.json)
"""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The structs Soong registers for every module of a kind (android/module.go InitAndroidModule,
# InitAndroidArchModule; android/defaults.go InitDefaultableModule, InitDefaultsModule;
# android/apex.go InitApexModule).
ANDROID_MODULE = ["android/module.go:nameProperties", "android/module.go:commonProperties",
                  "android/module.go:distProperties"]
HOST_AND_DEVICE = ["android/module.go:hostAndDeviceProperties"]
DEFAULTABLE = ["android/defaults.go:defaultsProperties"]
APEX = ["android/apex.go:ApexProperties"]
DEFAULTS_MODULE = ["android/module.go:nameProperties", "android/module.go:commonProperties",
                   "android/module.go:distProperties", "android/module.go:hostAndDeviceProperties",
                   "android/apex.go:ApexProperties", "android/defaults.go:defaultsProperties",
                   "android/defaults.go:DefaultsVisibilityProperties"]

# The property structs of each family's defaults module (rust/rust.go DefaultsFactory, cc/cc.go
# DefaultsFactory): a defaults module accepts exactly these. The concrete cc module types are
# given the same list, an upper bound of what each registers (their decorators and features
# are not traced here).
RUST_STRUCTS = [
    "rust/rust.go:BaseProperties", "cc/afdo.go:AfdoProperties", "cc/cc.go:VendorProperties",
    "rust/benchmark.go:BenchmarkProperties", "rust/bindgen.go:BindgenProperties",
    "rust/compiler.go:BaseCompilerProperties", "rust/binary.go:BinaryCompilerProperties",
    "rust/library.go:LibraryCompilerProperties",
    "rust/proc_macro.go:ProcMacroCompilerProperties", "rust/prebuilt.go:PrebuiltProperties",
    "rust/source_provider.go:SourceProviderProperties", "rust/test.go:TestProperties",
    "cc/coverage.go:CoverageProperties", "cc/compiler.go:RustBindgenClangProperties",
    "rust/clippy.go:ClippyProperties", "rust/sanitize.go:SanitizeProperties",
    "fuzz/fuzz_common.go:FuzzProperties",
]
CC_STRUCTS = [
    "cc/cc.go:BaseProperties", "cc/cc.go:VendorProperties",
    "cc/compiler.go:BaseCompilerProperties", "cc/linker.go:BaseLinkerProperties",
    "cc/object.go:ObjectLinkerProperties", "cc/library.go:LibraryProperties",
    "cc/library.go:StaticProperties", "cc/library.go:SharedProperties",
    "cc/library.go:FlagExporterProperties", "cc/binary.go:BinaryLinkerProperties",
    "cc/test.go:TestLinkerProperties", "cc/test.go:TestInstallerProperties",
    "cc/test.go:TestBinaryProperties", "cc/test.go:BenchmarkProperties",
    "fuzz/fuzz_common.go:FuzzProperties",
    "cc/stl.go:StlProperties", "cc/sanitize.go:SanitizeProperties",
    "cc/strip.go:StripProperties", "cc/installer.go:InstallerProperties",
    "cc/tidy.go:TidyProperties", "cc/coverage.go:CoverageProperties",
    "cc/sabi.go:SAbiProperties", "cc/lto.go:LTOProperties", "cc/afdo.go:AfdoProperties",
    "cc/orderfile.go:OrderfileProperties", "android/proto.go:ProtoProperties",
    "cc/compiler.go:RustBindgenClangProperties", "cc/prebuilt.go:prebuiltLinkerProperties",
]

# What every Rust module registers (rust/rust.go newModule and Module.Init: its own properties,
# vendor availability, afdo, coverage, clippy and sanitize), then what its compiler decorator
# adds (compilerProps of rust/library.go libraryDecorator, rust/test.go testDecorator over
# rust/binary.go binaryDecorator; both strip through cc's Stripper).
RUST_MODULE = [
    "rust/rust.go:BaseProperties", "cc/cc.go:VendorProperties", "cc/afdo.go:AfdoProperties",
    "cc/coverage.go:CoverageProperties", "rust/clippy.go:ClippyProperties",
    "rust/sanitize.go:SanitizeProperties",
]
RUST_LIBRARY = RUST_MODULE + [
    "rust/compiler.go:BaseCompilerProperties", "rust/library.go:LibraryCompilerProperties",
    "cc/strip.go:StripProperties",
]
RUST_TEST = RUST_MODULE + [
    "rust/compiler.go:BaseCompilerProperties", "rust/binary.go:BinaryCompilerProperties",
    "cc/strip.go:StripProperties", "rust/test.go:TestProperties",
]

# Module type -> (the file that registers it, the structs it accepts, whether it has arch variants
# (`arch`, `target`, `multilib`)).
MODULE_TYPES = {
    "rust_defaults": ("rust/rust.go", RUST_STRUCTS + DEFAULTS_MODULE, True),
    "rust_library_rlib": ("rust/library.go", RUST_LIBRARY + ANDROID_MODULE + HOST_AND_DEVICE
                          + APEX + DEFAULTABLE, True),
    "rust_ffi_static": ("rust/library.go", RUST_LIBRARY + ANDROID_MODULE + HOST_AND_DEVICE
                        + APEX + DEFAULTABLE, True),
    "rust_test": ("rust/test.go", RUST_TEST + ANDROID_MODULE + HOST_AND_DEVICE + APEX
                  + DEFAULTABLE, True),
    "cc_defaults": ("cc/cc.go", CC_STRUCTS + DEFAULTS_MODULE, True),
    "cc_library_static": ("cc/library.go", CC_STRUCTS + ANDROID_MODULE + HOST_AND_DEVICE + APEX
                          + DEFAULTABLE, True),
    "cc_library_headers": ("cc/library_headers.go", CC_STRUCTS + ANDROID_MODULE + HOST_AND_DEVICE
                           + APEX + DEFAULTABLE, True),
    "cc_binary": ("cc/binary.go", CC_STRUCTS + ANDROID_MODULE + HOST_AND_DEVICE + APEX
                  + DEFAULTABLE, True),
    # filesystem/raw_binary.go: its own properties, InitAndroidArchModule (device only).
    "raw_binary": ("filesystem/raw_binary.go",
                   ["filesystem/raw_binary.go:rawBinaryProperties"] + ANDROID_MODULE, True),
    # android/filegroup.go: InitAndroidModule, InitDefaultableModule; no arch variants.
    "filegroup": ("android/filegroup.go",
                  ["android/filegroup.go:fileGroupProperties"] + ANDROID_MODULE + DEFAULTABLE,
                  False),
    # android/package.go and android/namespace.go register only their own properties.
    "package": ("android/package.go", ["android/package.go:packageProperties"], False),
    "soong_namespace": ("android/namespace.go", ["android/namespace.go:namespaceProperties"],
                        False),
}

# Properties Soong adds to a module at run time rather than in a Go struct: `product_variables`
# (android/variable.go, built from the module's own structs) and the arch groups
# (android/arch.go).
DYNAMIC_GROUPS = ["product_variables"]

SCALAR_TYPES = re.compile(
    r"^(\*?(bool|string|int|int64|uint|uint64|float64)|\[\](\*?string|string|int|\*bool)|"
    r"proptools\.Configurable\[.*\]|Configurable\[.*\]|interface\{\}|any|map\[.*)$")


def git_show(soong, tag, path):
    return subprocess.run(["git", "--git-dir", str(soong), "show", f"{tag}:{path}"],
                          capture_output=True, text=True, check=True).stdout


def package_files(soong, tag, package):
    """The non-test Go files of one package directory of build/soong at `tag`."""
    names = subprocess.run(["git", "--git-dir", str(soong), "ls-tree", "--name-only", f"{tag}:{package}"],
                           capture_output=True, text=True, check=True).stdout.split()
    return [f"{package}/{name}" for name in names
            if name.endswith(".go") and not name.endswith("_test.go")]


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"(^|\s)//.*$", "", line) for line in text.splitlines())


def struct_bodies(text):
    """Go struct type name -> the text between its braces, for every `type X struct {` in text."""
    bodies = {}
    for match in re.finditer(r"^type\s+(\w+)\s+struct\s*\{", text, re.M):
        depth, pos = 1, match.end()
        while depth:
            char = text[pos]
            depth += char == "{"
            depth -= char == "}"
            pos += 1
        bodies[match.group(1)] = text[match.end():pos - 1]
    return bodies


class Soong:
    """The struct definitions of build/soong at one tag, read package by package on demand."""

    def __init__(self, git_dir, tag):
        self.git_dir, self.tag, self.packages = git_dir, tag, {}

    def struct(self, package, name):
        if package not in self.packages:
            structs = {}
            for path in package_files(self.git_dir, self.tag, package):
                for struct_name, body in struct_bodies(strip_comments(
                        git_show(self.git_dir, self.tag, path))).items():
                    structs[struct_name] = (path, body)
            self.packages[package] = structs
        return self.packages[package].get(name)


def fields(body):
    """(name, type, tag) of each field of a struct body; anonymous nested structs keep their body
    as the type, prefixed with `struct`."""
    pos, result = 0, []
    while pos < len(body):
        line_end = body.find("\n", pos)
        line_end = len(body) if line_end < 0 else line_end
        line = body[pos:line_end].strip()
        if not line:
            pos = line_end + 1
            continue
        nested = re.match(r"((?:\w+\s*,\s*)*\w+)\s+(\[\])?\*?struct\s*\{", line)
        if nested:
            start = body.find("{", pos) + 1
            depth, end = 1, start
            while depth:
                depth += body[end] == "{"
                depth -= body[end] == "}"
                end += 1
            rest_end = body.find("\n", end)
            rest_end = len(body) if rest_end < 0 else rest_end
            tag = re.search(r"`([^`]*)`", body[end:rest_end])
            for name in re.split(r"\s*,\s*", nested.group(1)):
                result.append((name, "struct" + body[start:end - 1], tag.group(1) if tag else ""))
            pos = rest_end + 1
            continue
        match = re.match(r"((?:\w+\s*,\s*)*[\w.*]+)(?:\s+([^`]+?))?\s*(?:`([^`]*)`)?\s*$", line)
        if not match:
            raise SystemExit(f"cannot read struct field {line!r}")
        go_type, tag = (match.group(2) or "").strip(), match.group(3) or ""
        for name in re.split(r"\s*,\s*", match.group(1)):
            result.append((name, go_type, tag))
        pos = line_end + 1
    return result


def property_name(field):
    return field[0].lower() + field[1:]


def flatten(soong, package, body, prefix, arch_variant, out):
    """Adds `prefix + name` -> arch-variant flag for every settable property in a struct body."""
    for name, go_type, tag in fields(body):
        if 'blueprint:"mutated"' in tag:
            continue
        variant = arch_variant or "arch_variant" in tag
        if not go_type:  # an embedded struct: `Name` or `pkg.Name`
            embedded_package, _, embedded = name.rpartition(".")
            found = soong.struct(embedded_package or package, embedded)
            if found:
                flatten(soong, embedded_package or package, found[1], prefix, variant, out)
            continue
        if not name[0].isupper():
            continue
        if go_type.startswith("struct"):
            flatten(soong, package, go_type[len("struct"):], f"{prefix}{property_name(name)}.",
                    variant, out)
            continue
        bare = go_type.lstrip("*")
        named = re.fullmatch(r"(?:(\w+)\.)?([A-Za-z]\w*)", bare)
        if named and not SCALAR_TYPES.match(go_type):
            found = soong.struct(named.group(1) or package, named.group(2))
            if found:
                flatten(soong, named.group(1) or package, found[1],
                        f"{prefix}{property_name(name)}.", variant, out)
                continue
        out[prefix + property_name(name)] = variant


def arch_targets(soong):
    """The keys `target`, `arch` and `multilib` accept (android/arch.go)."""
    text = strip_comments(git_show(soong.git_dir, soong.tag, "android/arch.go"))
    archs = dict(re.findall(r'(\w+)\s*=\s*newArch\("(\w+)"', text))
    special = re.search(r"targets := \[\]string\{(.*?)\}", text, re.S).group(1)
    targets = [name.lower() for name in re.findall(r'"(\w+)"', special)]
    for os_name, os_class, os_archs in re.findall(
            r'newOsType\("(\w+)",\s*(\w+),\s*\w+((?:,\s*\w+)*)\)', text):
        targets.append(os_name)
        for arch in re.findall(r"\w+", os_archs):
            arch_name = archs[arch]
            targets.append(f"{os_name}_{arch_name}")
            if os_name in ("android", "linux_glibc", "linux_musl", "linux_bionic"):
                targets.append(f"linux_{arch_name}")
                if os_class == "Host":
                    targets.append(f"host_linux_{arch_name}")
            if os_name in ("android", "linux_bionic"):
                targets.append(f"bionic_{arch_name}")
            if os_name == "linux_glibc":
                targets.append(f"glibc_{arch_name}")
            if os_name == "linux_musl":
                targets.append(f"musl_{arch_name}")
    return {"target": sorted(set(targets)), "arch": sorted(archs.values()),
            "multilib": ["lib32", "lib64"]}


def extract(git_dir, tag):
    soong = Soong(git_dir, tag)
    commit = subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", f"{tag}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    structs = {}
    for _, (_, names, _) in MODULE_TYPES.items():
        for qualified in names:
            if qualified in structs:
                continue
            path, name = qualified.split(":")
            found = soong.struct(path.rsplit("/", 1)[0], name)
            if not found:
                raise SystemExit(f"{tag}: no struct {name} in {path.rsplit('/', 1)[0]}/")
            if found[0] != path:
                raise SystemExit(f"{tag}: struct {name} is in {found[0]}, not {path}")
            properties = {}
            flatten(soong, path.rsplit("/", 1)[0], found[1], "", False, properties)
            structs[qualified] = {
                "properties": sorted(properties),
                "arch_variant": sorted(name for name, variant in properties.items() if variant),
            }
    rust_config = git_show(git_dir, tag, "rust/config/global.go")
    rust_version = re.search(r'RustDefaultVersion\s*=\s*"([^"]+)"', rust_config).group(1)
    return {
        "release": tag,
        "rust_default_version": rust_version,
        "rust_default_version_from": "rust/config/global.go",
        "source": {
            "repository": "https://android.googlesource.com/platform/build/soong",
            "read_from": "https://github.com/msft-mirror-aosp/platform.build.soong",
            "tag": tag,
            "commit": commit,
        },
        "note": "Generated by tools/soong_schema.py; do not edit. Each struct's property list comes "
                "from the Go file in its key. Concrete cc_* types are given cc's defaults-module "
                "structs, an upper bound of what Soong accepts on them; rust_* types their own.",
        "dynamic_groups": DYNAMIC_GROUPS,
        "arch_groups": arch_targets(soong),
        "module_types": {
            module_type: {"registered_in": registered_in, "structs": names,
                          "arch_variants": has_arch}
            for module_type, (registered_in, names, has_arch) in MODULE_TYPES.items()
        },
        "structs": structs,
    }


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    git_dir, tag = Path(sys.argv[1]), sys.argv[2]
    schema = extract(git_dir, tag)
    out = ROOT / "tools" / "soong" / tag / "schema.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out.relative_to(ROOT)}: {len(schema['structs'])} structs, "
          f"{len(schema['module_types'])} module types")


if __name__ == "__main__":
    main()
