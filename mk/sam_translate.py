"""Translate template.yaml (SAM) into plain CloudFormation JSON, offline, for checkov.

Run with the IaC venv (aws-sam-cli brings aws-sam-translator):
``.venv-iac/bin/python mk/sam_translate.py IN OUT``. No AWS call is made: the template names no managed
policies, so the managed-policy map is empty, and the boto3 session only supplies a region. Local code paths
become placeholder S3 URIs. Resource Metadata (checkov skips with their justifications) is passed through to
the generated resources.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import boto3
from samcli.yamlhelper import yaml_parse  # type: ignore[import-not-found]
from samtranslator.parser.parser import Parser  # type: ignore[import-not-found]
from samtranslator.translator.translator import Translator  # type: ignore[import-not-found]


def _placeholder_artifacts(template: dict[str, Any]) -> None:
    """Point local CodeUri/ContentUri at a dummy S3 object, as `sam package` would at an uploaded one."""
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = "s3://artifact-bucket/" + props[key].strip("/") + ".zip"


def main(argv: list[str]) -> int:
    src, dst = Path(argv[1]), Path(argv[2])
    template: dict[str, Any] = yaml_parse(src.read_text(encoding="utf-8"))
    _placeholder_artifacts(template)
    translator = Translator({}, Parser(), boto_session=boto3.session.Session(region_name="us-east-1"))
    out = translator.translate(template, parameter_values={}, passthrough_metadata=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
