#!/usr/bin/env python3
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
"""Tests of tools/build_as_soong.py's pure parts: which versions the tree resolves, the check
against the release's, and the order modules are compiled in. The compilation itself is what
`make lint` runs."""

import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import build_as_soong  # noqa: E402
import check_soong  # noqa: E402

LOCK = """\
version = 4

[[package]]
name = "spin"
version = "0.9.9"

[[package]]
name = "spin"
version = "0.12.3"

[[package]]
name = "smccc"
version = "0.1.1"

[[package]]
name = "vmbase"
version = "0.1.0"
dependencies = ["smccc", "spin 0.9.9"]

[[package]]
name = "host_tool"
version = "0.1.0"
dependencies = ["spin 0.12.3"]
"""


class VersionTest(unittest.TestCase):
    def lock(self):
        folder = tempfile.TemporaryDirectory()
        self.addCleanup(folder.cleanup)
        path = Path(folder.name) / "Cargo.lock"
        path.write_text(LOCK)
        return path

    def test_only_the_named_packages_dependencies_count(self):
        used = build_as_soong.tree_versions(self.lock(), {"vmbase"})
        self.assertEqual(used, {"smccc": {"0.1.1"}, "spin": {"0.9.9"}})

    def test_another_version_than_the_release_is_an_error_naming_both(self):
        used = build_as_soong.tree_versions(self.lock(), {"vmbase", "host_tool"})
        errors = build_as_soong.check_versions({"spin": "0.9.9", "smccc": "0.1.1"}, used)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("builds spin 0.12.3, 0.9.9; android-15.0.0_r1 ships 0.9.9", errors[0])

    def test_the_tree_resolves_the_release_versions(self):
        release = build_as_soong.release_crates()
        self.assertEqual(release["aarch64-paging"], "0.7.0")
        self.assertEqual(release["virtio-drivers"], "0.7.4")
        used = build_as_soong.tree_versions(check_soong.ROOT / "Cargo.lock", {"vmbase"})
        self.assertEqual(build_as_soong.check_versions(release, used), [])


class OrderTest(unittest.TestCase):
    def test_a_module_comes_after_the_tree_modules_it_uses(self):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "Android.bp"
            path.write_text(textwrap.dedent("""\
                rust_ffi_static {
                    name: "libapp",
                    crate_name: "app",
                    srcs: ["app.rs"],
                    rustlibs: ["libmiddle", "liblog_rust_nostd"],
                }
                rust_library_rlib {
                    name: "libmiddle",
                    crate_name: "middle",
                    srcs: ["middle.rs"],
                    rustlibs: ["libbase"],
                }
                rust_library_rlib {
                    name: "libbase",
                    crate_name: "base",
                    srcs: ["base.rs"],
                }
                """))
            modules = check_soong.parse_blueprint(path)
            by_name = {module.name: module for module in modules}
            order = [m.name for m in build_as_soong.build_order(modules, by_name)]
            self.assertEqual(order, ["libbase", "libmiddle", "libapp"])


if __name__ == "__main__":
    unittest.main()
