"""The checked-in DDL and template.yaml blocks are what alblake.schema generates (``make generate``), and
``alblake schema`` prints them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from alblake import cli, schema, schema_render
from alblake.parse import _FIELDS

ROOT = Path(__file__).resolve().parent.parent


def test_checked_in_files_are_current() -> None:
    stale = schema_render.stale_files(ROOT)
    assert stale == [], f"run `make generate`: {[str(p.relative_to(ROOT)) for p in stale]} differ from alblake.schema"


def _copy_of_generated_files(tmp_path: Path) -> Path:
    for relative in schema_render.GENERATED_PATHS:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / relative, tmp_path / relative)
    return tmp_path


def test_a_stale_file_is_detected_and_rewritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy_of_generated_files(tmp_path)
    template = root / schema_render.TEMPLATE_PATH
    template.write_text(template.read_text().replace("Type: double", "Type: float", 1))
    ddl = root / schema_render.RAW_DDL_PATH
    ddl.write_text(ddl.read_text().replace("`matched_rule_priority` int", "`matched_rule_priority` string"))
    assert set(schema_render.stale_files(root)) == {template, ddl}
    assert cli.main(["schema", "--check", str(root)]) == 1
    assert cli.main(["schema", "--write", str(root)]) == 0
    assert schema_render.stale_files(root) == []
    assert cli.main(["schema", "--check", str(root)]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["stale", "stale", "rewrote",
                                                                                   "rewrote"]
    assert template.read_text() == (ROOT / schema_render.TEMPLATE_PATH).read_text()


def test_a_template_without_markers_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy_of_generated_files(tmp_path)
    template = root / schema_render.TEMPLATE_PATH
    template.write_text(template.read_text().replace("# END generated: RawTable SerDe and columns", ""))
    assert cli.main(["schema", "--check", str(root)]) == 2
    assert "RawTable SerDe and columns" in capsys.readouterr().err


def test_only_the_marked_blocks_are_generated() -> None:
    """Everything outside the markers is left as written (other resources are edited by hand)."""
    text = (ROOT / schema_render.TEMPLATE_PATH).read_text()
    stripped = schema_render.render_template(text.replace("SerializationLibrary:", "SerializationLibrary:  "))
    assert stripped == text  # inside a block: regenerated
    outside = text.replace("TableType: EXTERNAL_TABLE", "TableType:  EXTERNAL_TABLE")
    assert schema_render.render_template(outside) == outside


def test_help_and_printed_artefacts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["schema", "--help"])
    assert exit_info.value.code == 0
    assert "raw-ddl" in capsys.readouterr().out
    for name, path in (("ddl", schema_render.CURATED_DDL_PATH), ("raw-ddl", schema_render.RAW_DDL_PATH)):
        assert cli.main(["schema", name]) == 0
        assert capsys.readouterr().out == (ROOT / path).read_text()
    assert cli.main(["schema", "regex"]) == 0
    assert capsys.readouterr().out == schema.RAW_LOG_REGEX + "\n"
    for name, expected in (("glue-columns", schema.glue_columns()), ("raw-glue-columns", schema.raw_glue_columns())):
        assert cli.main(["schema", name]) == 0
        assert yaml.safe_load(capsys.readouterr().out) == expected
    assert cli.main(["schema"]) == 2


def test_the_parser_field_table_is_the_schema_declaration() -> None:
    """One declaration: each log field fills, in order, exactly the schema's columns."""
    assert len(_FIELDS) == len(schema.LOG_FIELDS) == schema.KNOWN_FIELDS
    filled = [name for f in _FIELDS for name in (f.split_into or (f.column,))]
    assert filled == list(schema.COLUMN_NAMES)
    assert [f.name for f in _FIELDS] == [f.name for f in schema.LOG_FIELDS]
