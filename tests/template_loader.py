"""template.yaml as a dictionary, read with a YAML loader that turns CloudFormation short-form tags (``!Ref``,
``!Sub``, ...) into their long form, so no IaC tool is needed (the tests run in the main venv, offline)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


def _construct_intrinsic(loader: Any, tag_suffix: str, node: Any) -> dict[str, Any]:
    """``!Ref X`` -> {"Ref": "X"}, ``!GetAtt A.B`` -> {"Fn::GetAtt": ["A", "B"]}, ``!Sub s`` -> {"Fn::Sub": s}."""
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref" or tag_suffix == "Condition":
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader: Any = type("_CfnLoader", (yaml.SafeLoader,), {})
yaml.add_multi_constructor("!", _construct_intrinsic, Loader=_CfnLoader)


@cache
def load_template() -> dict[str, Any]:
    loaded = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_CfnLoader)
    assert isinstance(loaded, dict)
    return loaded
