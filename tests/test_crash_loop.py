"""A few iterations of the crash loop (tests/crashloop.py, `scripts/crash-loop N` for
more): writers of every kind, SIGKILL at a random moment, restart, every acknowledged
operation checked, the trail verified, and no orphan blob at the end."""

import os

from crashloop import crash_loop


def test_crash_loop(tmp_path):
    seed = int(os.environ.get("COFFER_CRASH_SEED", "1205"))
    iterations = int(os.environ.get("COFFER_CRASH_ITERATIONS", "4"))
    summary = crash_loop(iterations, seed, tmp_path / "data")
    assert summary["acknowledged_operations"] > 20 * iterations, summary
