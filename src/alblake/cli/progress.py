"""What ``alblake ingest`` and ``alblake replay`` show while they run: the progress bar, one line per failure."""

from __future__ import annotations

import sys

from alblake.display import human_bytes, printable
from alblake.ingest.runner import Progress


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


def describe_failure(name: str, reason: str) -> str:
    """One line for stderr; the name is terminal-safe (file names can hold control characters)."""
    return f"error: {printable(name)}: {printable(reason)}"
