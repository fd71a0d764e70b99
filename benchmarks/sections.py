"""Benchmarks that share a document each own a section of it, between marker comments."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, name: str, lines: list[str]) -> None:
    """Replaces the section `name` of the markdown file at path (appending it the first time)."""
    begin, end = f"<!-- section {name}: begin -->", f"<!-- section {name}: end -->"
    block = "\n".join([begin, *lines, end])
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + block + "\n"
    path.write_text(text)
