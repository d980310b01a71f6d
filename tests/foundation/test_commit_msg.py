"""The commit-msg hook (scripts/check_commit_msg.py): subjects of at most 72 characters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOOK = REPO / "scripts" / "check_commit_msg.py"

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("message", "accepted"),
    [
        ("x" * 72 + "\n\na body line may be longer than seventy-two characters, " * 2, True),
        ("x" * 73 + "\n", False),
        ("Subject\n", True),
        ("# git's comment\nSubject\n\nBody\n", True),  # comment lines are not the subject
        ("Subject\nbody glued to it\n", False),
        ("\n\nBody only\n", False),
    ],
)
def test_subject_length_and_blank_line(tmp_path: Path, message: str, accepted: bool) -> None:
    path = tmp_path / "COMMIT_EDITMSG"
    path.write_text(message)
    done = subprocess.run(
        [sys.executable, str(HOOK), str(path)], capture_output=True, text=True, check=False
    )
    assert (done.returncode == 0) == accepted, done.stderr
    assert (done.stderr == "") == accepted
