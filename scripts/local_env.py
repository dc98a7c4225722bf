"""Write the ``--env-vars`` JSON of ``sam local invoke`` for a deployed stack, from its outputs and parameters.

    .venv/bin/python scripts/local_env.py STACK [--out FILE] [--region REGION]    (or: make local-env STACK=NAME)
    sam local invoke IngestFunction -e events/s3-put.json --env-vars FILE

Reads the stack with CloudFormation ``DescribeStacks`` (needs AWS credentials, as ``sam local invoke`` against a
deployed stack does) and maps its outputs and parameters onto the environment variables template.yaml gives
each function, so the locally run handler writes to the deployed lake bucket and Glue table. Without
``--out`` the JSON goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

# Fixed values the template sets on the functions (not outputs).
INGEST_FIXED = {
    "LAKE_PREFIX": "",
    "POWERTOOLS_SERVICE_NAME": "alblake-ingest",
    "POWERTOOLS_METRICS_NAMESPACE": "AlbLake",
}
COMPACT_FIXED = {
    "LAKE_PREFIX": "",
    "POWERTOOLS_SERVICE_NAME": "alblake-compact",
    "POWERTOOLS_METRICS_NAMESPACE": "AlbLake",
}
# Environment variable -> stack output that holds its value.
FROM_OUTPUTS = {
    "LAKE_BUCKET": "LakeBucketName",
    "GLUE_DATABASE": "GlueDatabaseName",
    "GLUE_TABLE": "CuratedTableName",
}
INGEST_FROM_OUTPUTS = {**FROM_OUTPUTS, "QUICKSIGHT_DATASET_ID": "QuickSightDataSetId"}
# Environment variable -> stack parameter.
INGEST_FROM_PARAMETERS = {
    "QUICKSIGHT_MIN_REFRESH_MINUTES": "QuickSightMinRefreshMinutes",
    "LOG_METRICS": "EnableLogMetrics",
    "LOG_METRICS_MAX_AGE_MINUTES": "LogMetricsMaxAgeMinutes",
}
COMPACT_FROM_PARAMETERS = {
    "COMPACT_OLDER_THAN_MINUTES": "CompactOlderThanMinutes",
    "COMPACT_GRACE_MINUTES": "CompactGraceMinutes",
}


class StackError(Exception):
    """The stack does not exist, or lacks an output or parameter this script needs."""


def describe(cloudformation: Any, stack: str) -> tuple[dict[str, str], dict[str, str]]:
    """(outputs, parameters) of ``stack`` by key."""
    try:
        (found,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as e:
        raise StackError(f"stack {stack!r}: {e.response.get('Error', {}).get('Message', e)}") from e
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in found.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in found.get("Parameters", [])}
    return outputs, parameters


def _pick(source: dict[str, str], mapping: dict[str, str], what: str, stack: str) -> dict[str, str]:
    missing = sorted(set(mapping.values()) - set(source))
    if missing:
        raise StackError(f"stack {stack!r} has no {what} {', '.join(missing)} (deployed from an older template?)")
    return {env: source[key] for env, key in mapping.items()}


def env_vars(outputs: dict[str, str], parameters: dict[str, str], stack: str) -> dict[str, dict[str, str]]:
    """``{"IngestFunction": {...}, "CompactFunction": {...}}`` in the format ``sam local invoke --env-vars`` reads."""
    result = {
        "IngestFunction": {
            **INGEST_FIXED,
            **_pick(outputs, INGEST_FROM_OUTPUTS, "output", stack),
            **_pick(parameters, INGEST_FROM_PARAMETERS, "parameter", stack),
        }
    }
    if "CompactFunctionName" in outputs:
        result["CompactFunction"] = {
            **COMPACT_FIXED,
            **_pick(outputs, FROM_OUTPUTS, "output", stack),
            **_pick(parameters, COMPACT_FROM_PARAMETERS, "parameter", stack),
        }
    return result


def main(argv: list[str] | None = None, cloudformation: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="name of the deployed stack")
    parser.add_argument("--out", type=Path, help="file to write (default: stdout)")
    parser.add_argument("--region", help="the stack's Region (default: the AWS CLI/SDK configuration)")
    args = parser.parse_args(argv)
    client = cloudformation or boto3.client("cloudformation", region_name=args.region)
    try:
        outputs, parameters = describe(client, args.stack)
        text = json.dumps(env_vars(outputs, parameters, args.stack), indent=2, sort_keys=True) + "\n"
    except StackError as e:
        print(f"local-env: {e}", file=sys.stderr)
        return 1
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}: sam local invoke IngestFunction -e events/s3-put.json --env-vars {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
