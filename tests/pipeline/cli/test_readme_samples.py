"""The README's sample outputs are what the commands print today."""

from __future__ import annotations

import subprocess
import sys

from tests.fixtures.processes import REPO

REPLAY = ["replay", "deploy/examples/history.jsonl", "--config", "deploy/examples/floodgate.yaml"]


def test_the_readme_s_replay_sample_is_replay_s_output() -> None:
    readme = (REPO / "README.md").read_text()
    command = f".venv/bin/floodgate {' '.join(REPLAY)}"
    assert command in readme
    sample = readme.split(command, 1)[1].split("```\n", 2)[2].split("```", 1)[0]
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", *REPLAY], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sample == done.stdout
