#!/usr/bin/env python3
# Copyright 2026 The vmbase Authors
# SPDX-License-Identifier: Apache-2.0
"""Checks the documentation a reader follows: README.md, docs/**/*.md, host/README.md and
linuxboot/README.md.

- Every TOML and JSON snippet parses, so that a reader can paste it as written.
- Every relative link resolves: the file or folder exists and, for a Markdown file, the
  `#anchor` names one of its headings (GitHub's rule: lower case, punctuation dropped, spaces
  to hyphens, `-1`, `-2`, ... for repeats).
- Every one of those pages is reachable from README.md by following relative links, so that
  nothing moved out of the README is lost to its readers."""

import json
import re
import sys
import tomllib
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARSERS = {"toml": tomllib.loads, "json": json.loads}
# A fenced block: its language and its text, indented as a list item may indent it.
BLOCK = re.compile(r"^( *)```(\w+)\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)
FENCE = re.compile(r"^ *(```|~~~)")
HEADING = re.compile(r"^(#{1,6}) +(.*?) *#* *$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# An inline link or image, `[text](target "title")`; the text may hold code spans, already
# replaced by then, and one level of brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^\s)>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def documentation_pages(root):
    """The pages checked, README.md first."""
    pages = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    pages += [root / "host" / "README.md", root / "linuxboot" / "README.md"]
    return [page for page in pages if page.is_file()]


def prose_lines(text):
    """(line number, line) for each line outside fenced code blocks."""
    fenced = None
    for number, line in enumerate(text.splitlines(), start=1):
        fence = FENCE.match(line)
        if fence:
            if fenced is None:
                fenced = fence.group(1)
            elif fence.group(1) == fenced:
                fenced = None
            continue
        if fenced is None:
            yield number, line


def slug(heading):
    """The anchor GitHub gives a heading's text (before repeats are numbered)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts as its text
    text = CODE_SPAN.sub(r"\2", text)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text):
    """Every anchor the headings of a Markdown page define."""
    seen = {}
    result = set()
    for _, line in prose_lines(text):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(text):
    """(line number, target) for each link outside code."""
    for number, line in prose_lines(text):
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            yield number, definition.group(1)
            continue
        # Code spans are replaced, not removed, so that a link whose text is code still matches.
        line = CODE_SPAN.sub(lambda span: "x" * len(span.group(0)), line)
        for match in INLINE_LINK.finditer(line):
            yield number, match.group(1)


def resolve(page, target, root):
    """(file or folder, anchor or None) a relative link points at, or None for an external one."""
    if not target or EXTERNAL.match(target):
        return None
    path, _, anchor = target.partition("#")
    destination = page if not path else (page.parent / path)
    if path.startswith("/"):
        destination = root / path.lstrip("/")
    return destination.resolve(), (anchor or None)


def check_links(root, pages):
    """Errors for links that do not resolve; the graph of page-to-page links."""
    errors = []
    graph = {}
    anchor_cache = {}
    for page in pages:
        text = page.read_text()
        graph[page] = set()
        for number, target in links(text):
            resolved = resolve(page, target, root)
            if resolved is None:
                continue
            destination, anchor = resolved
            where = f"{page.relative_to(root)}:{number}"
            if not destination.exists():
                errors.append(f"{where}: link to {target}: no such file or folder")
                continue
            if destination.suffix == ".md" and destination.is_file():
                graph[page].add(destination)
                if anchor is not None:
                    if destination not in anchor_cache:
                        anchor_cache[destination] = anchors(destination.read_text())
                    if anchor not in anchor_cache[destination]:
                        errors.append(f"{where}: link to {target}: no heading has the anchor #{anchor}")
    return errors, graph


def check_reachable(root, pages, graph):
    """Errors for pages that README.md does not lead to."""
    start = root / "README.md"
    reached = {start.resolve()}
    queue = deque([start.resolve()])
    resolved_graph = {page.resolve(): targets for page, targets in graph.items()}
    while queue:
        for target in resolved_graph.get(queue.popleft(), ()):
            if target not in reached:
                reached.add(target)
                queue.append(target)
    return [
        f"{page.relative_to(root)}: not reachable from README.md by links"
        for page in pages
        if page.resolve() not in reached
    ]


def check_snippets(root, pages):
    """Errors for TOML and JSON snippets that do not parse, and how many were checked."""
    errors = []
    count = 0
    for path in pages:
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
                errors.append(f"{path.relative_to(root)}:{line}: {language} snippet: {error}")
    return errors, count


def check(root):
    """Every error in the documentation under root, and a summary of what was checked."""
    pages = documentation_pages(root)
    snippet_errors, snippets = check_snippets(root, pages)
    link_errors, graph = check_links(root, pages)
    reach_errors = check_reachable(root, pages, graph)
    link_count = sum(
        resolve(page, target, root) is not None for page in pages for _, target in links(page.read_text())
    )
    summary = (
        f"{snippets} TOML and JSON snippets parse; {link_count} relative links in {len(pages)} pages "
        "resolve, and every page is reachable from README.md"
    )
    return snippet_errors + link_errors + reach_errors, summary


def main():
    errors, summary = check(ROOT)
    for error in errors:
        print(f"check_snippets: {error}", file=sys.stderr)
    if errors:
        return 1
    print(f"check_snippets: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
