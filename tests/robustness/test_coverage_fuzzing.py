"""Coverage-guided fuzzing (atheris) of the parsers that take outside input, on a fixed budget
of runs per CI run; the canary shows that a crash is found and fails the run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.figures import Figures
from tests.fixtures.processes import REPO
from tests.robustness.fuzz_targets import write_seeds

RUNS = {"policy": 40_000, "log": 15_000, "record": 8_000, "state": 40_000}


def fuzz(target: str, corpus: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.robustness.fuzz_targets", target, str(corpus),
         # the budget is the runs; the time cap only stops a hang (the record target's
         # 8,000 took 110-121 s on a slow day of the 2-core machine)
         "-seed=1", "-max_total_time=300", f"-artifact_prefix={corpus.parent}/", *flags],
        cwd=REPO, capture_output=True, text=True, timeout=420, check=False)


@pytest.mark.parametrize("target", sorted(RUNS))
def test_fuzz_target_survives_its_budget(target: str, tmp_path: Path, figures: Figures) -> None:
    corpus = tmp_path / "corpus"
    write_seeds(target, corpus)
    result = fuzz(target, corpus, f"-runs={RUNS[target]}")
    report = result.stderr[-4000:]
    assert result.returncode == 0, report
    done = re.search(r"Done (\d+) runs in (\d+) second", result.stderr)
    assert done and int(done[1]) == RUNS[target], report
    coverage = re.findall(r"cov: (\d+)", result.stderr)
    figures.add(f"atheris: {target}", f"{int(done[1]):,} mutated inputs",
                f"no crash, {coverage[-1] if coverage else '?'} code edges reached")
    print(f"{target}: {int(done[1]):,} inputs in {done[2]} s, no crash; "
          f"{coverage[-1] if coverage else '?'} edges covered; corpus {len(list(corpus.iterdir()))}")


def test_a_crash_is_found_and_fails_the_run(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_seeds("canary", corpus)
    result = fuzz("canary", corpus, "-runs=2000000")
    assert result.returncode != 0
    assert "canary reached" in result.stdout + result.stderr
    assert list(tmp_path.glob("crash-*"))  # the input that crashed it is kept to replay
