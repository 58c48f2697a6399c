"""The README's Python example is examples/quickstart.py, and it runs."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "quickstart.py"


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_readme_shows_the_example_verbatim():
    assert readme_python_blocks() == [EXAMPLE.read_text()]


@pytest.mark.timeout(300)
def test_the_example_runs_in_a_fresh_interpreter(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    accuracy = re.search(r"deployed accuracy: ([0-9.]+) on 360 test images", result.stdout)
    assert accuracy and float(accuracy.group(1)) > 0.5, result.stdout
    assert re.search(r"loihi estimate: \d+ nJ per inference", result.stdout), result.stdout
    assert (tmp_path / "tiny.net").is_file()
    for name in ("run.json", "energy.json", "energy.md", "energy.png"):
        assert (tmp_path / "tiny-energy" / name).is_file()
