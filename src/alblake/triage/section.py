"""The triage section of ``alblake report``: the lake's last 30 minutes of data against the 24 hours before.

The section compares the dimensions the rollup holds (target, route, verb, target group: ``REPORT_DIMENSIONS``),
with the same counts and scores ``alblake triage`` gives for them; the others (client network, user-agent family,
error_reason, desync classification, TLS protocol, domain) are what ``alblake triage`` adds, and the section names
the command for the same window. Reading the curated table for those too would be a second full scan of the day
on top of the report's own queries (docs/BENCHMARKS.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import duckdb

from alblake.locations import open_lake_at
from alblake.ports import Lake
from alblake.scope import EVERYTHING, Scope
from alblake.triage import Window, make_window, run_triage
from alblake.triage.dimensions import DIMENSIONS
from alblake.triage.local import local_connection, newest_time, rollup_gaps, sql_runner
from alblake.triage.render import html_section

WINDOW = timedelta(minutes=30)
BASELINE = timedelta(hours=24)
REPORT_DIMENSIONS = tuple(d for d in DIMENSIONS if d.rollup is not None)


def report_section(
    lake: Lake | Path | str, scope: Scope = EVERYTHING, con: duckdb.DuckDBPyConnection | None = None
) -> str:
    """An HTML card: triage of the newest 30 minutes in the lake's part ``scope`` (the lake may be old: not "now";
    the baseline is what the scope holds of the 24 hours before). ``con``: the report's connection to the same
    lake and scope (``alblake.analysis.connect``), reused; else one is opened."""
    opened = open_lake_at(lake) if isinstance(lake, Path | str) else lake
    with _connection(opened, scope, con) as connection:
        window = section_window(connection)
        if window is None:
            return ('<section class="card wide" id="q-triage" data-rows="0"><h2>Triage</h2>'
                    '<p class="muted">no data</p></section>')
        gaps = rollup_gaps(connection, window)
        notes = [f"{len(gaps)} data files of these hours have no rollup file: read the curated table"] if gaps else []
        result = run_triage(sql_runner(connection), window, engine="duckdb", use_rollup=not gaps, notes=notes,
                            dimensions=REPORT_DIMENSIONS)
    title = f"Triage: what is different about the last 30 minutes (to {window.end:%Y-%m-%d %H:%M} UTC)"
    return html_section(result, title, more=triage_command(window))


def section_window(con: duckdb.DuckDBPyConnection) -> Window | None:
    """The section's window on the connection's views: the 30 minutes up to the minute after the newest request,
    and the 24 hours before; None when the views hold no request."""
    latest = newest_time(con)
    if latest is None:
        return None
    end = latest.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return make_window(start=end - WINDOW, end=end, baseline=BASELINE)


def triage_command(window: Window) -> str:
    """``alblake triage`` over the section's window and baseline (every dimension)."""
    return f"alblake triage --from {window.start:%Y-%m-%dT%H:%M} --to {window.end:%Y-%m-%dT%H:%M}"


@contextmanager
def _connection(lake: Lake, scope: Scope, con: duckdb.DuckDBPyConnection | None
                ) -> Iterator[duckdb.DuckDBPyConnection]:
    if con is not None:
        yield con
        return
    with local_connection(lake, scope) as own:
        yield own
