"""The progress bar of ``alblake ingest`` and ``alblake replay`` (on a terminal, unless ``--quiet``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from alblake.display import human_bytes

if TYPE_CHECKING:
    from alblake.ingest.runner import Progress, ProgressCallback


def progress_bar(state: Progress) -> None:
    width = 30
    filled = width * state.objects_done // max(state.objects_total, 1)
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {state.objects_done}/{state.objects_total} objects, "
        f"{human_bytes(state.bytes_done)} of {human_bytes(state.bytes_total)}"
    )
    if state.objects_done == state.objects_total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def progress_callback(quiet: bool) -> ProgressCallback | None:
    """``progress_bar`` when stderr is a terminal and ``--quiet`` was not given."""
    return progress_bar if sys.stderr.isatty() and not quiet else None
