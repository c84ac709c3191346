"""Silence transformers' logging and progress bars while maas calls it.

transformers logs notices we cannot act on (``loss_type=None ... Using the default loss``)
and draws tqdm bars on stderr when it saves or loads weights; in a job's log they are noise.
The previous settings come back on exit, so a caller's own configuration is untouched.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from transformers.utils import logging as hf_logging

__all__ = ["quiet_transformers"]


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Only errors are logged, and no progress bar is drawn, inside this block."""
    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # unannotated upstream
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # unannotated upstream
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]  # unannotated
