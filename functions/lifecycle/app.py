"""Lambda entry point: the lake's lifecycle (EventBridge schedule), and the stack's privacy settings published
into the lake (a CloudFormation custom resource: an event with a ``RequestType``).

Thin wiring only; the logic, its time budget and its failure semantics live in ``alblake.service.lifecycle``.
boto3 clients are created once per container; the lake's key, if any, is read once per container.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from alblake.aws.custom_resource import answer
from alblake.service.lifecycle import LifecycleConfig, LifecyclePipeline, build_lifecycle_pipeline

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "alblake-lifecycle")
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "AlbLake"), service=SERVICE)
tracer = Tracer(service=SERVICE)


@functools.cache
def pipeline() -> LifecyclePipeline:
    """The container's pipeline (``pipeline.cache_clear()`` rebuilds it in tests)."""
    config = LifecycleConfig.from_env(logger=logger)
    return build_lifecycle_pipeline(
        config, s3=boto3.client("s3"), glue=boto3.client("glue"), logger=logger, metrics=metrics
    )


def publish(event: dict[str, Any]) -> dict[str, Any]:
    """The custom resource: Create and Update publish the privacy settings, Delete leaves the lake as it is.
    CloudFormation is always answered (it would wait an hour otherwise); a failure answers FAILED with why."""
    physical_id = f"{os.environ.get('LAKE_BUCKET', 'lake')}/lifecycle/policy.json"
    try:
        if event["RequestType"] in ("Create", "Update"):
            pipeline().publish(event.get("ResourceProperties", {}))
    except Exception as error:  # any failure: the stack operation fails with the reason (never the key)
        logger.exception("publishing the lake's privacy settings failed")
        answer(event, success=False, physical_id=physical_id, reason=f"{type(error).__name__}: {error}")
        metrics.add_metric(name="LakePolicyPublished", unit="Count", value=0)
        return {"status": "FAILED"}
    answer(event, success=True, physical_id=physical_id)
    metrics.add_metric(name="LakePolicyPublished", unit="Count", value=1)
    return {"status": "SUCCESS"}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "RequestType" in event:
        return publish(event)
    return pipeline().run(context.get_remaining_time_in_millis)
