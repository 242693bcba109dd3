"""The README's fenced examples, read for the tests that run them (`test_readme_examples.py`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
SHELL = ("bash", "sh", "shell", "console")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Example:
    """One fenced block of the README (or one command of a shell block), with the line it starts on."""

    line: int
    text: str

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.text.splitlines()[0][:70]}"


def blocks(*languages: str) -> list[Example]:
    """The fenced blocks in these languages, in README order."""
    text = README.read_text()
    return [
        Example(text[: match.start()].count("\n") + 2, match.group(2))
        for match in _FENCE.finditer(text)
        if match.group(1) in languages
    ]


def commands() -> list[Example]:
    """Every command of the README's shell blocks (one per line; comments and blank lines left out)."""
    found = []
    for block in blocks(*SHELL):
        for offset, line in enumerate(block.text.splitlines()):
            if line.strip() and not line.lstrip().startswith("#"):
                found.append(Example(block.line + offset, line.strip()))
    return found


def without_comment(command: str) -> str:
    """The command without its trailing `# comment` (README commands quote no `#`)."""
    return re.sub(r"\s+#.*$", "", command).strip()
