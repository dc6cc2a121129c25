#!/usr/bin/env python3
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
"""Writes the fdt_writer target's seeds (corpus-seed-writer/): each tree of corpus-seed/ behind
two edit scripts, in the input format fuzz_targets/fdt_writer.rs describes."""

import pathlib

SET, DELETE, ADD_NODE, PACK = range(4)
PATHS = [b"/", b"/chosen", b"/aliases", b"/memory", b"/n", b"/n/m", b"/soc", b"/pcie@10000000"]


def script(in_place_room, moved_room, edits):
    out = bytes([in_place_room, moved_room, len(edits)])
    for operation, path, name, value in edits:
        out += bytes([operation, PATHS.index(path), len(name)])
        out += len(value).to_bytes(2, "big") + name + value
    return out


SCRIPTS = [
    # Tight: no room in place, 16 bytes after the moved copy.
    script(0, 16, [
        (SET, b"/chosen", b"bootargs", b"console=ttyAMA0\0"),
        (DELETE, b"/chosen", b"stdout-path", b""),
        (ADD_NODE, b"/", b"n", b""),
        (SET, b"/n", b"reg", bytes(16)),
        (PACK, b"/", b"", b""),
    ]),
    # Roomy, with a 2 KiB value and names the tree does not have.
    script(255, 255, [
        (SET, b"/", b"kaslr-seed", bytes(range(8))),
        (SET, b"/chosen", b"linux,a-long-property-name", bytes(2048)),
        (ADD_NODE, b"/n", b"m@1000", b""),
        (DELETE, b"/", b"compatible", b""),
        (SET, b"/memory", b"reg", bytes(32)),
    ]),
]

fuzz = pathlib.Path(__file__).parent
(fuzz / "corpus-seed-writer").mkdir(exist_ok=True)
for tree in sorted((fuzz / "corpus-seed").glob("*.dtb")):
    for index, prefix in enumerate(SCRIPTS):
        (fuzz / "corpus-seed-writer" / f"{tree.stem}-{index}").write_bytes(prefix + tree.read_bytes())
