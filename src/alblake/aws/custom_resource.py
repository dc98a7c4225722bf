"""The answer of a CloudFormation custom resource: a PUT of a JSON document to the pre-signed ``ResponseURL`` of
the request. CloudFormation waits for it (up to an hour), so the handler answers whatever happened."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from typing import Any

TIMEOUT_SECONDS = 30
REASON_LIMIT = 1000  # characters of the reason kept (the whole answer must stay under 4,096 bytes)


def answer(event: Mapping[str, Any], *, success: bool, physical_id: str, reason: str = "") -> None:
    """Tell CloudFormation how the request ended (``SUCCESS`` or ``FAILED`` with ``reason``)."""
    body = {
        "Status": "SUCCESS" if success else "FAILED",
        "Reason": reason[:REASON_LIMIT] or ("done" if success else "failed"),
        "PhysicalResourceId": physical_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "NoEcho": False,
        "Data": {},
    }
    data = json.dumps(body).encode()
    headers = {"Content-Type": "", "Content-Length": str(len(data))}  # as AWS's cfn-response module sends it
    request = urllib.request.Request(str(event["ResponseURL"]), data=data, method="PUT", headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):  # the pre-signed https URL CloudFormation gave
        pass
