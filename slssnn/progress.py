"""A terminal progress bar fed as ``update(done, total)``, for runs that report their steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def progress_bar(desc: str, unit: str) -> Callable[[int, int], None]:
    """``update(done, total)``: draws a tqdm bar on the first call, closes it at the total."""
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        bar = state.setdefault("bar", tqdm(total=total, desc=desc, unit=unit))
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update
