"""commit-msg hook: the subject line is at most 72 characters, detail goes in the body.

Run by pre-commit (`pre-commit install --hook-type commit-msg`) with the message file's path.
"""

from __future__ import annotations

import sys
from pathlib import Path

MAX_SUBJECT = 72


def subject_problem(message: str) -> str | None:
    """Why a commit message's subject is refused, or None when it is fine."""
    lines = [line for line in message.splitlines() if not line.startswith("#")]
    subject = lines[0].rstrip() if lines else ""
    if not subject:
        return "the subject line is empty"
    if len(subject) > MAX_SUBJECT:
        return f"the subject has {len(subject)} characters (at most {MAX_SUBJECT}): {subject!r}"
    if len(lines) > 1 and lines[1].strip():
        return "leave a blank line between the subject and the body"
    return None


def main(argv: list[str]) -> int:
    problem = subject_problem(Path(argv[1]).read_text(encoding="utf-8"))
    if problem:
        print(f"commit message: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
