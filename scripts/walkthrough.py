"""The README's "3 a.m. walkthrough", for real: a generated day whose last half hour has an incident, the alarm that
fires on it, and the commands that find it. Prints the transcript (markdown) the README shows.

1. A day of traffic (``alblake.incidents``) ending at ``--now``; from 25 to 5 minutes before it, target
   10.0.3.21:9000 answers every request with 502.
2. ``alblake ingest`` into ``OUT/lake`` (the lake writes the rollup with it).
3. The log-derived metrics the ingest function would publish for the last 30 minutes
   (``alblake.service.log_metrics``), and the ``RouteErrorShareAlarm`` rule of template.yaml evaluated on them:
   the largest route 5xx share per 5-minute period above 20% in two of the last three periods.
4. ``alblake triage --since 30m``, then ``alblake query errors_by_route``, ``alblake sql`` and ``alblake triage
   --where`` on the 502s to dig in.

Usage: ``python scripts/walkthrough.py --out DIR [--now 2026-11-24T03:00:00Z] [--per-second 10]``. ``--now``
defaults to the clock; the README's transcript pins it at 03:00 (and so passes ``--now`` to ``--since``).
"""

from __future__ import annotations

import argparse
import gzip
import shlex
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alblake.incidents import FailingTarget, write_traffic
from alblake.parse import parse_block
from alblake.service.log_metrics import LogMetricsSettings, metric_documents

TARGET = "10.0.3.21:9000"
THRESHOLD = 20.0  # template.yaml RouteErrorPercentThreshold's default
DIG = (
    "SELECT target_ip || ':' || CAST(target_port AS VARCHAR) AS target, elb_status_code, "
    "lambda_error_reason AS error_reason, count(*) AS requests, min(time) AS first, max(time) AS last "
    "FROM alb_logs WHERE elb_status_code >= 500 GROUP BY 1, 2, 3 ORDER BY requests DESC LIMIT 5"
)


def _run(out: Path, *args: str) -> str:
    command = [sys.executable, "-m", "alblake", *args]
    result = subprocess.run(command, cwd=out, capture_output=True, text=True, check=True)
    shown = " ".join(shlex.quote(a) if " " in a or "'" in a else a for a in args)
    return f"$ alblake {shown}\n{result.stdout.rstrip()}\n"


def _alarm(logs: list[Path], now: datetime) -> str:
    """What the ingest function publishes for the last 30 minutes, and the alarm rule evaluated on it."""
    recent = [p for p in logs if now - timedelta(minutes=35) <= _end_of(p) <= now]
    lines = [line for p in recent for line in gzip.decompress(p.read_bytes()).splitlines() if line.strip()]
    rows = parse_block(b"\n".join(lines) + b"\n").table
    documents = metric_documents(rows, LogMetricsSettings(enabled=True), now)
    periods: dict[datetime, tuple[float, str]] = defaultdict(lambda: (0.0, "-"))
    for document in documents:
        if "WorstRoute5xxPercent" in document:
            minute = datetime.fromtimestamp(document["_aws"]["Timestamp"] / 1000, tz=UTC)
            period = minute.replace(minute=minute.minute - minute.minute % 5)
            periods[period] = max(periods[period], (document["WorstRoute5xxPercent"], document.get("WorstRoute", "-")))
    last = sorted(periods)[-4:-1]  # the newest period is still being delivered
    text = ["AlbLake/AccessLogs WorstRoute5xxPercent, Maximum per 5 minutes (what the ingest function published):"]
    breaching = 0
    for period in last:
        share, route = periods[period]
        breaching += share > THRESHOLD
        text.append(f"  {period:%H:%M}  {share:6.2f}%  (WorstRoute {route})")
    state = "ALARM" if breaching >= 2 else "OK"
    text.append(f"RouteErrorShareAlarm: {breaching} of the last 3 periods above {THRESHOLD:g}% -> {state}")
    return "\n".join(text) + "\n"


def _end_of(path: Path) -> datetime:
    stamp = path.name.split("_")[4]  # ..._app.name.id_20261124T0255Z_ip_suffix.log.gz
    return datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--now", help="the clock at 'now' (default: the real clock), e.g. 2026-11-24T03:00:00Z")
    parser.add_argument("--per-second", type=float, default=10.0)
    parser.add_argument("--hours", type=float, default=24.0, help="hours of traffic before --now")
    args = parser.parse_args()
    now = (datetime.fromisoformat(args.now.replace("Z", "+00:00")) if args.now else datetime.now(UTC)).astimezone(UTC)
    now = now.replace(second=0, microsecond=0)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    incident = FailingTarget(TARGET, now - timedelta(minutes=25), minutes=20)
    logs = write_traffic(out / "logs", end=now, hours=args.hours, per_second=args.per_second, incidents=[incident])
    pinned = ["--now", now.strftime("%Y-%m-%dT%H:%M:%SZ")] if args.now else []
    last_30 = ["--since", f"{now - timedelta(minutes=30):%Y-%m-%dT%H:%MZ}", "--until", f"{now:%Y-%m-%dT%H:%MZ}"]
    transcript = [
        f"<!-- scripts/walkthrough.py --out {out.name} {' '.join(pinned)} --per-second {args.per_second:g} -->",
        "```",
        _run(out, "ingest", "logs", "--lake", "lake", "--quiet").rstrip(),
        "```",
        "```",
        _alarm(logs, now).rstrip(),
        "```",
        "```",
        _run(out, "triage", "--lake", "lake", "--since", "30m", *pinned).rstrip(),
        "```",
        "```",
        _run(out, "query", "errors_by_route", "--lake", "lake", *last_30, "--limit", "5").rstrip(),
        "```",
        "```",
        _run(out, "sql", "--lake", "lake", *last_30, DIG).rstrip(),
        "```",
        "```",
        _run(out, "triage", "--lake", "lake", "--since", "30m", *pinned, "--where", "elb_status_code = 502",
             "--top", "5").rstrip(),
        "```",
    ]
    print("\n".join(transcript))


if __name__ == "__main__":
    main()
