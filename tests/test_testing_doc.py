"""docs/testing-with-coffer.md's pytest example, run exactly as the page gives it: its two
files are taken from the page's code blocks, written into an empty directory, and run by
pytest against the binary under test (issue 20)."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import REPO, coffer_bin

DOC = REPO / "docs" / "testing-with-coffer.md"


def example_files():
    """The page's python code blocks that open with a `# FILENAME` line."""
    blocks = re.findall(r"```python\n(# (\S+\.py)\n.*?)```", DOC.read_text(), re.S)
    return {name: text for text, name in blocks}


def test_the_pytest_example_in_the_docs_passes_as_written():
    files = example_files()
    assert set(files) == {"conftest.py", "test_with_coffer.py"}, files.keys()
    with tempfile.TemporaryDirectory(prefix="coffer-doc-example-") as d:
        for name, text in files.items():
            (Path(d) / name).write_text(text)
        env = dict(os.environ, COFFER_BIN=coffer_bin())
        # A reader's shell has none of these; the test runner's may.
        for k in list(env):
            if k.startswith("COFFER_") and k != "COFFER_BIN" or k in (
                    "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
                env.pop(k)
        p = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0",
             "--durations-min=0", "-rA", d],
            cwd=d, env=env, capture_output=True, text=True, timeout=600,
        )
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert re.search(r"\b4 passed\b", out), out
    # The rotation and the 7-day deletion took no days: pytest's own timing of that test.
    m = re.search(r"([\d.]+)s call\s+\S*test_rotation_and_deletion_without_waiting", out)
    assert m, out
    seconds = float(m.group(1))
    print(f"rotation after 91 days and a 7-day deletion: {seconds:.3f} s of wall time")
    # Days of real waiting would show as days; the bound is far above what it takes.
    assert seconds < 5, out
