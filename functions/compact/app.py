"""Lambda entry point: scheduled compaction of the lake's closed partition-hours (EventBridge schedule).

Thin wiring only; the logic, its time budget and its failure semantics live in
``alblake.service.compaction``. boto3 clients are created once per container and reused by warm runs.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from alblake.service.compaction import CompactConfig, CompactionPipeline, build_compaction_pipeline, report_dict

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "alblake-compact")
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "AlbLake"), service=SERVICE)
tracer = Tracer(service=SERVICE)


@functools.cache
def pipeline() -> CompactionPipeline:
    """The container's pipeline (``pipeline.cache_clear()`` rebuilds it in tests)."""
    config = CompactConfig.from_env()
    return build_compaction_pipeline(
        config, s3=boto3.client("s3"), glue=boto3.client("glue"), logger=logger, metrics=metrics
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return report_dict(pipeline().run(context.get_remaining_time_in_millis))
