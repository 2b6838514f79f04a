"""Progress bars for long steps (calibration, compilation, tuning)."""
from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(iterable=None, *, desc: str, total: int | None = None, enable: bool = True):
    """A tqdm bar on stderr; silent when ``enable`` is False or stderr is not a terminal
    and the caller did not insist."""
    return tqdm(iterable, desc=desc, total=total, disable=not enable, file=sys.stderr,
                leave=False, dynamic_ncols=True)
