"""pyplot gives a headless (Agg) pyplot; save_figure writes a PNG into new folders and closes the figure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from etude.runtime import pyplot, save_figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_pyplot_selects_agg() -> None:
    plt = pyplot()
    assert plt.get_backend().lower() == "agg"


def test_save_figure_writes_png_in_new_folders_and_closes(tmp_path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    target = tmp_path / "a" / "b" / "plot.png"
    out = save_figure(fig, str(target), dpi=50)
    assert isinstance(out, Path) and out == target
    assert target.read_bytes()[:8] == PNG_SIGNATURE
    assert fig.number not in plt.get_fignums()


def test_save_figure_passes_savefig_kwargs_without_tight_layout(tmp_path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_title("untight")
    out = save_figure(fig, tmp_path / "grid.png", dpi=40, tight=False, bbox_inches="tight")
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    assert fig.number not in plt.get_fignums()


def test_import_runtime_does_not_import_matplotlib() -> None:
    code = "import sys, etude.runtime; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
