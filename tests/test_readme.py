"""The README's library block runs as written (lucidrains' habit: examples that cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_one_library_block() -> None:
    assert len(_python_blocks()) == 1


def test_readme_library_block_runs(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("music21")
    exec(compile(_python_blocks()[0], str(README), "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    assert "-2.04" in printed  # the TFT-vs-defect value the comment promises
