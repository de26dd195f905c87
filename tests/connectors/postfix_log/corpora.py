"""Where the public log samples are: ../shared/corpora beside the repository (not copied in)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CORPORA = REPO.parent / "shared" / "corpora"
LIGHTMETER = CORPORA / "lightmeter-controlcenter" / "test_files" / "postfix_logs" / "individual_files"
WHYSCREAM = CORPORA / "whyscream-postfix-grok-patterns" / "test"

needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason=f"no public corpora at {CORPORA}")
