#!/usr/bin/env python3
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
"""Tests of tools/check_soong.py and tools/soong_schema.py: the tree passes, and each kind of
mistake Soong (android-15.0.0_r1) would stop on is reported with its file and line."""

import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_soong  # noqa: E402
import soong_schema  # noqa: E402

NAMESPACE = "soong_namespace {\n}\n\n"


class BlueprintCase(unittest.TestCase):
    """Runs the checker on one Android.bp written to a temporary folder."""

    @classmethod
    def setUpClass(cls):
        cls.release = check_soong.load_release()

    def check(self, text, namespace=True):
        folder = tempfile.TemporaryDirectory()
        self.addCleanup(folder.cleanup)
        path = Path(folder.name) / "Android.bp"
        path.write_text((NAMESPACE if namespace else "") + textwrap.dedent(text))
        (Path(folder.name) / "lib.rs").write_text("")
        _, errors = check_soong.check_blueprints([path], self.release)
        return errors

    def assert_one_error(self, text, *fragments):
        errors = self.check(text)
        self.assertEqual(len(errors), 1, errors)
        for fragment in fragments:
            self.assertIn(fragment, errors[0])
        return errors[0]


class TreeTest(unittest.TestCase):
    def test_the_tree_is_valid_for_the_release(self):
        modules, errors = check_soong.check_blueprints(check_soong.BLUEPRINTS,
                                                                 check_soong.load_release())
        self.assertEqual(errors, [])
        self.assertGreater(len(modules), 10)

    def test_the_release_is_named_in_the_data(self):
        release = check_soong.load_release()
        self.assertEqual(release["release"], check_soong.RELEASE)
        self.assertEqual(check_soong.RELEASE, "android-15.0.0_r1")


class PropertyTest(BlueprintCase):
    def test_a_made_up_property_is_rejected_with_its_line(self):
        self.assert_one_error(
            """\
            rust_library_rlib {
                name: "libx",
                crate_name: "x",
                srcs: ["lib.rs"],
                made_up_property: true,
            }
            """, "Android.bp:8:", "unknown property made_up_property", "android-15.0.0_r1")

    def test_a_test_property_is_rejected_on_a_library(self):
        self.assert_one_error(
            """\
            rust_library_rlib {
                name: "libx",
                crate_name: "x",
                srcs: ["lib.rs"],
                test_suites: ["general-tests"],
            }
            """, "Android.bp:8:", "unknown property test_suites")

    def test_panic_abort_is_not_a_rust_property(self):
        self.assert_one_error(
            """\
            rust_defaults {
                name: "x_defaults",
                panic: "abort",
            }
            """, "Android.bp:6:", "unknown property panic")

    def test_a_made_up_nested_property_is_rejected_and_a_real_one_accepted(self):
        self.assert_one_error(
            """\
            cc_defaults {
                name: "x_defaults",
                sanitize: {
                    hwaddress: false,
                    made_up: true,
                },
            }
            """, "Android.bp:8:", "unknown property sanitize.made_up")

    def test_a_made_up_module_type_is_rejected(self):
        self.assert_one_error(
            """\
            rust_made_up {
                name: "x",
            }
            """, "Android.bp:4:", "module type rust_made_up does not exist")

    def test_arch_groups_take_known_keys_and_arch_variant_properties_only(self):
        errors = self.check(
            """\
            rust_library_rlib {
                name: "libx",
                crate_name: "x",
                srcs: ["lib.rs"],
                target: {
                    android_arm64: {
                        enabled: true,
                        cargo_pkg_version: "1.0.0",
                    },
                    android_arm65: {
                        enabled: true,
                    },
                },
            }
            """)
        self.assertEqual(len(errors), 2, errors)
        self.assertIn("Android.bp:11: rust_library_rlib libx: cargo_pkg_version cannot vary by "
                      "target", errors[0])
        self.assertIn("Android.bp:13:", errors[1])
        self.assertIn("target.android_arm65 is not a target", errors[1])

    def test_the_namespace_must_come_first_in_the_root(self):
        errors = self.check(
            """\
            filegroup {
                name: "x",
                srcs: ["lib.rs"],
            }
            """, namespace=False)
        self.assertEqual(errors, [f"{errors[0].split(':')[0]}:1: the root Android.bp must "
                                  "declare a soong_namespace first"])


class ReferenceTest(BlueprintCase):
    def test_a_made_up_module_is_rejected_with_its_line(self):
        self.assert_one_error(
            """\
            rust_library_rlib {
                name: "libx",
                crate_name: "x",
                srcs: ["lib.rs"],
                rustlibs: [
                    "libvmbase_made_up",
                ],
            }
            """, "Android.bp:9:", "libx.rustlibs names libvmbase_made_up",
            "neither defined here nor a module of android-15.0.0_r1")

    def test_made_up_references_in_every_kind_of_property_are_rejected(self):
        errors = self.check(
            """\
            cc_binary {
                name: "x",
                defaults: ["made_up_defaults"],
                srcs: [":made_up_filegroup"],
                static_libs: ["libmade_up_static"],
                whole_static_libs: ["libmade_up_whole"],
                header_libs: ["libmade_up_headers"],
                target: {
                    android_arm64: {
                        shared_libs: ["libmade_up_shared"],
                    },
                },
            }
            """)
        named = sorted(error.split(" names ")[1].split(",")[0] for error in errors)
        self.assertEqual(named, ["libmade_up_headers", "libmade_up_shared", "libmade_up_static",
                                 "libmade_up_whole", "made_up_defaults", "made_up_filegroup"])

    def test_modules_of_the_release_and_of_the_tree_are_accepted(self):
        errors = self.check(
            """\
            rust_library_rlib {
                name: "libx",
                crate_name: "x",
                srcs: ["lib.rs"],
                rustlibs: ["liblog_rust_nostd"],
                whole_static_libs: ["librust_baremetal"],
            }

            rust_test {
                name: "x.test",
                srcs: [":x_srcs"],
                rustlibs: [
                    "libx",
                    "libvmclient",
                ],
                data: [":x_srcs"],
            }

            filegroup {
                name: "x_srcs",
                srcs: ["lib.rs"],
            }
            """)
        self.assertEqual(errors, [])


class RustVersionTest(unittest.TestCase):
    def test_a_crate_soong_builds_must_declare_the_release_rust_version_at_most(self):
        release = check_soong.load_release()
        self.assertEqual(release["rust_version"], "1.78.0")
        self.assertEqual(check_soong.check_rust_version(release), [])
        with tempfile.TemporaryDirectory() as folder:
            manifest = Path(folder) / "Cargo.toml"
            for declared, accepted in (('rust-version = "1.88"', False), ("", False),
                                       ('rust-version = "1.78"', True),
                                       ('rust-version = "1.74.1"', True)):
                manifest.write_text(f'[package]\nname = "x"\n{declared}\n')
                errors = check_soong.check_rust_version(release, [manifest])
                self.assertEqual(errors == [], accepted, (declared, errors))
                if declared.endswith('"1.88"'):
                    self.assertIn("rust-version is 1.88; android-15.0.0_r1's Soong builds with "
                                  "1.78.0", errors[0])


class TestEnvironmentTest(BlueprintCase):
    def test_a_test_that_needs_cargo_manifest_dir_is_rejected_and_option_env_accepted(self):
        module = """\
            rust_test {
                name: "x.test",
                crate_name: "x",
                srcs: ["lib.rs"],
            }
            """
        folder = tempfile.TemporaryDirectory()
        self.addCleanup(folder.cleanup)
        path = Path(folder.name) / "Android.bp"
        path.write_text(NAMESPACE + textwrap.dedent(module))
        source = Path(folder.name) / "lib.rs"
        source.write_text('const DIR: &str = env!("CARGO_MANIFEST_DIR");\n')
        _, errors = check_soong.check_blueprints([path], self.release)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("lib.rs:1: x.test reads CARGO_MANIFEST_DIR", errors[0])
        source.write_text('const DIR: Option<&str> = option_env!("CARGO_MANIFEST_DIR");\n')
        _, errors = check_soong.check_blueprints([path], self.release)
        self.assertEqual(errors, [])


class SchemaExtractionTest(unittest.TestCase):
    def test_fields_of_a_go_struct(self):
        body = textwrap.dedent("""\
            Srcs []string `android:"path,arch_variant"`
            Crate_name string
            Vendor, Product struct {
                Cflags []string
            }
            Lto struct {
                Thin *bool `android:"arch_variant"`
            } `android:"arch_variant"`
            Mutated_thing bool `blueprint:"mutated"`
            unexported string
        """)
        properties = {}
        soong_schema.flatten(None, "rust", body, "", False, properties)
        self.assertEqual(properties, {
            "srcs": True, "crate_name": False, "vendor.cflags": False, "product.cflags": False,
            "lto.thin": True,
        })

    def test_the_committed_schema_lists_the_properties_we_rely_on(self):
        release = check_soong.load_release()
        rust, rust_variant, _ = release["types"]["rust_library_rlib"]
        self.assertTrue({"rustlibs", "whole_static_libs", "stdlibs", "no_stdlibs",
                         "prefer_rlib", "enabled"} <= rust)
        self.assertTrue({"enabled", "rustlibs"} <= rust_variant)
        self.assertNotIn("panic", rust)
        cc, _, _ = release["types"]["cc_binary"]
        self.assertTrue({"nocrt", "static_executable", "linker_scripts", "sanitize.hwaddress",
                         "native_coverage", "stl"} <= cc)


if __name__ == "__main__":
    unittest.main()
