# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
"""Unit tests for check_snippets.py: each builds a small documentation tree in a temporary folder
and checks that the mistake it plants is reported, and that a correct tree passes."""

import tempfile
import unittest
from pathlib import Path

import check_snippets


class DocumentationTree(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.root = Path(self.folder.name)
        (self.root / "docs").mkdir()
        (self.root / "host").mkdir()
        self.write("host/README.md", "# The launcher\n\nBack to [the front door](../README.md).\n")
        self.write("docs/guide.md", "# Guide\n\n## The main function\n\nSee [the launcher](../host/README.md).\n")
        self.write("README.md", "# vmbase\n\n## Quick start\n\nRead [the guide](docs/guide.md).\n")

    def tearDown(self):
        self.folder.cleanup()

    def write(self, path, text):
        (self.root / path).write_text(text)

    def errors(self):
        return check_snippets.check(self.root)[0]

    def test_a_correct_tree_passes(self):
        self.assertEqual(self.errors(), [])

    def test_a_link_to_a_missing_file_is_reported(self):
        self.write("README.md", "# vmbase\n\n[guide](docs/guide.md), [gone](docs/gone.md)\n")
        self.assertEqual(self.errors(), ["README.md:3: link to docs/gone.md: no such file or folder"])

    def test_a_link_to_a_missing_anchor_is_reported(self):
        self.write("README.md", "# vmbase\n\n[main](docs/guide.md#the-main-functions)\n")
        self.assertEqual(
            self.errors(),
            ["README.md:3: link to docs/guide.md#the-main-functions: no heading has the anchor #the-main-functions"],
        )

    def test_an_anchor_in_the_same_page_is_checked(self):
        self.write("README.md", "# vmbase\n\n## Quick start\n\n[ok](#quick-start) [no](#slow-start) [g](docs/guide.md)\n")
        self.assertEqual(self.errors(), ["README.md:5: link to #slow-start: no heading has the anchor #slow-start"])

    def test_a_page_no_link_leads_to_is_reported(self):
        self.write("docs/orphan.md", "# Orphan\n\n[home](../README.md)\n")
        self.assertEqual(self.errors(), ["docs/orphan.md: not reachable from README.md by links"])

    def test_a_page_reached_through_another_page_counts(self):
        self.write("docs/deeper.md", "# Deeper\n")
        self.write("docs/guide.md", "# Guide\n\n[deeper](deeper.md) [host](../host/README.md)\n")
        self.assertEqual(self.errors(), [])

    def test_links_in_code_are_not_links(self):
        self.write(
            "README.md",
            "# vmbase\n\n[guide](docs/guide.md) `[x](missing.md)`\n\n```text\n[y](missing.md)\n# Not a heading\n```\n",
        )
        self.assertEqual(self.errors(), [])

    def test_a_link_whose_text_is_code_is_checked(self):
        self.write("README.md", "# vmbase\n\n[guide](docs/guide.md) [`vm run`](host/README.md#running)\n")
        self.assertEqual(
            self.errors(), ["README.md:3: link to host/README.md#running: no heading has the anchor #running"]
        )

    def test_external_links_are_not_followed(self):
        self.write("README.md", "# vmbase\n\n[guide](docs/guide.md) [web](https://example.com/missing.md)\n")
        self.assertEqual(self.errors(), [])

    def test_a_bad_json_snippet_is_reported(self):
        self.write("docs/guide.md", "# Guide\n\n[h](../host/README.md)\n\n```json\n{\"a\": 1,}\n```\n")
        errors = self.errors()
        self.assertEqual(len(errors), 1)
        self.assertTrue(errors[0].startswith("docs/guide.md:5: json snippet:"), errors[0])


class Anchors(unittest.TestCase):
    def test_github_rules(self):
        text = (
            "# Running VMs: `vm run`\n"
            "## vmbase_linuxboot: a firmware that boots Linux\n"
            "## 1. Memory map\n"
            "## Devices (PCI and virtio)\n"
            "## Tests\n"
            "### Tests\n"
            "## [Linked](elsewhere.md) heading\n"
        )
        self.assertEqual(
            check_snippets.anchors(text),
            {
                "running-vms-vm-run",
                "vmbase_linuxboot-a-firmware-that-boots-linux",
                "1-memory-map",
                "devices-pci-and-virtio",
                "tests",
                "tests-1",
                "linked-heading",
            },
        )

    def test_headings_in_fenced_code_are_ignored(self):
        self.assertEqual(check_snippets.anchors("# Real\n```sh\n# comment\n```\n"), {"real"})


if __name__ == "__main__":
    unittest.main()
