"""docs/benchmarks.md holds one section per benchmark; each benchmark rewrites only its own."""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
TITLE = "# Benchmarks\n\nEach section names the command that produced it and the machine it ran on.\n"


def replace_section(heading: str, body: str, *, path: Path = DOCS) -> None:
    """Put `heading` + `body` in place of the section under the same `## ` heading, or append it."""
    text = path.read_text() if path.exists() else TITLE
    section = f"{heading}\n\n{body.strip()}\n"
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end:] if end >= 0 else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
