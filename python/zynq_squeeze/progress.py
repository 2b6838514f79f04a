"""Progress bars for long steps (calibration, compilation, tuning)."""
from __future__ import annotations

import sys

from tqdm import tqdm


def progress_bar(iterable=None, *, desc: str, total: int | None = None, enable: bool = True):
    """A tqdm bar on stderr; silent when ``enable`` is False or stderr is not a terminal
    (logs and CI get no carriage-return noise)."""
    return tqdm(iterable, desc=desc, total=total, disable=None if enable else True,
                file=sys.stderr, leave=False, dynamic_ncols=True)
