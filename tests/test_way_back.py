"""Every failure the ingest function logs names its way back: where the message goes and the command that brings
it back (``alblake redrive``), so an operator reading one log line knows what to run."""

from __future__ import annotations

import gzip
import json
from typing import Any

from alblake.lake.generational import open_lake
from alblake.service.ingest import IngestPipeline, LambdaConfig
from tests.fakes import CountingRefresher, MemoryReader, RecordingMetrics
from tests.lake_fakes import MemoryCatalog, MemoryStore
from tests.parse_helpers import DOC_LINE

KEY = (
    "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2018/07/02/"
    "123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.50dc6c495c0c9188_20180702T2225Z_10.0.0.1_a.log.gz"
)
CORRUPT = KEY.replace("_a.log.gz", "_b.log.gz")


class ExtraLogger:
    """Keeps each log line with its ``extra`` fields (Powertools puts them in the JSON line)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def _log(self, msg: object, **kwargs: Any) -> None:
        self.lines.append((str(msg), dict(kwargs.get("extra", {}))))

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._log(msg, **kwargs)

    warning = error = exception = info

    def append_keys(self, **additional_keys: object) -> None: ...

    def remove_keys(self, keys: object) -> None: ...


def message(i: int, key: str | None) -> dict[str, object]:
    body = "not json" if key is None else json.dumps(
        {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "logs"}, "object": {"key": key}}}]}
    )
    return {"eventSource": "aws:sqs", "messageId": f"m{i}", "body": body}


def test_each_failure_log_line_names_the_redrive_command() -> None:
    store = MemoryStore()
    reader = MemoryReader({("logs", KEY): gzip.compress(DOC_LINE.encode() + b"\n"), ("logs", CORRUPT): b"\x1f\x8bno"})
    logger = ExtraLogger()
    pipeline = IngestPipeline(
        config=LambdaConfig(lake_bucket="lake", glue_database="db"), reader=reader,
        lake=open_lake(store, MemoryCatalog()), refresher=CountingRefresher(), logger=logger,
        metrics=RecordingMetrics(),
    )

    def throttled(operation: str, key: str) -> None:
        if key.endswith(".parquet"):
            raise ConnectionError("S3 503 SlowDown")

    store.before_write = throttled
    response = pipeline.handle_event({"Records": [message(0, KEY), message(1, CORRUPT), message(2, None)]})
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == ["m0", "m1", "m2"]
    failures = [(msg, extra) for msg, extra in logger.lines if msg.startswith(("object failed", "rejecting"))]
    assert len(failures) == 3
    for msg, extra in failures:
        assert "alblake redrive --stack" in extra["way_back"], msg
        assert "dead-letter queue" in extra["way_back"], msg
