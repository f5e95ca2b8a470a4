"""Shared matplotlib helpers for the studies' plot modules: a headless pyplot and one save step.

matplotlib is imported only inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["pyplot", "save_figure"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the non-interactive Agg backend selected.

    Headless: renders straight to files, no display (or X server) needed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(
    fig: Any, path: str | os.PathLike[str], *, dpi: int = 90, tight: bool = True, **savefig_kwargs: Any
) -> Path:
    """Write ``fig`` to ``path`` and close it; returns the path.

    Renders in memory, then writes atomically (creating missing parent folders); applies ``fig.tight_layout()`` when ``tight`` is true, then
    calls ``fig.savefig(path, dpi=dpi, **savefig_kwargs)`` (for example ``bbox_inches="tight"``).
    """
    import io

    from etude.errors import BadInputError
    from etude.runtime.files import write_atomic

    target = Path(path)
    fmt = savefig_kwargs.pop("format", None) or (target.suffix[1:].lower() or "png")
    buffer = io.BytesIO()
    try:
        if tight:
            fig.tight_layout()
        fig.savefig(buffer, dpi=dpi, format=fmt, **savefig_kwargs)
    except ValueError as exc:
        raise BadInputError(f"cannot write figure {str(target)!r}: {str(exc).splitlines()[0]}") from exc
    finally:
        pyplot().close(fig)
    return write_atomic(target, buffer.getvalue(), what="figure")
