"""Lambda entry point: S3 ObjectCreated events for ALB access logs -> Parquet lake, Glue, QuickSight.

Thin wiring only; the event shapes are in ``alblake.aws.events``, the logic and its failure semantics in
``alblake.service.ingest``. boto3 clients and adapters are created once per container (on first use) and reused
by warm invocations.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from alblake.aws.quicksight import account_id_from_arn
from alblake.service.ingest import IngestPipeline, LambdaConfig, build_pipeline

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "alblake-ingest")
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "AlbLake"), service=SERVICE)
tracer = Tracer(service=SERVICE)


@functools.cache
def pipeline() -> IngestPipeline:
    """The container's pipeline (clients created once; ``pipeline.cache_clear()`` rebuilds it in tests)."""
    config = LambdaConfig.from_env(logger=logger)
    return build_pipeline(
        config,
        s3=boto3.client("s3"),
        glue=boto3.client("glue"),
        quicksight=boto3.client("quicksight") if config.quicksight_dataset_id else None,
        sts=boto3.client("sts"),
        logger=logger,
        metrics=metrics,
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return pipeline().handle_event(event, account_id=account_id_from_arn(context.invoked_function_arn))
