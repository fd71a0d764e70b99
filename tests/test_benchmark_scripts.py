"""The benchmark scripts refuse bad input in one line, before any training starts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(
    "script, args, message",
    [
        ("suite.py", ["--maps", "atlantis"], "unknown map atlantis"),
        ("suite.py", ["--maps", "grid4x4", "--minutes", "-1"], "--minutes must be positive"),
        ("suite.py", ["--maps", "grid4x4", "--seeds", "a,b"], "--seeds takes integers"),
        ("suite.py", ["--maps", "grid6", "--timing", "resco"], "unknown map grid6; valid with --timing resco"),
        ("first_iteration.py", ["--maps", "atlantis"], "unknown map atlantis"),
        ("first_iteration.py", ["--runners", "0"], "--runners must be at least 1"),
        ("levers.py", ["--variants", "bogus"], "unknown variant bogus"),
        ("levers.py", ["--timesteps", "0"], "--timesteps must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(script, args, message):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
