#!/usr/bin/env python3
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
"""Checks that every TOML and JSON snippet in README.md and docs/*.md parses, so that a reader
can paste them as written."""

import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARSERS = {"toml": tomllib.loads, "json": json.loads}
# A fenced block: its language and its text, indented as a list item may indent it.
BLOCK = re.compile(r"^( *)```(\w+)\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)


def main():
    errors = []
    count = 0
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for match in BLOCK.finditer(text):
            indent, language, body = match.groups()
            if language not in PARSERS:
                continue
            count += 1
            body = "\n".join(line.removeprefix(indent) for line in body.splitlines())
            line = text.count("\n", 0, match.start()) + 1
            try:
                PARSERS[language](body)
            except ValueError as error:
                errors.append(f"{path.relative_to(ROOT)}:{line}: {language} snippet: {error}")
    for error in errors:
        print(f"check_snippets: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"check_snippets: {count} TOML and JSON snippets parse")
    return 0


if __name__ == "__main__":
    sys.exit(main())
