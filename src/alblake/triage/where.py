"""``--where``: a predicate over the curated table's columns, checked before it goes into any SQL.

The text is parsed with sqlglot (Trino's grammar) as one expression, never a statement, and every node of it must
be on an allow-list: columns of ``alb_logs`` (and its partition keys), literals, comparisons, ``AND``/``OR``/``NOT``,
``IN`` a list, ``BETWEEN``, ``LIKE``, ``IS NULL``, arithmetic, ``||``, ``CAST`` to a plain type, and a few scalar
functions that exist with the same meaning on Athena and DuckDB. Anything else (a subquery, a second statement, an
aggregate, an unknown column or function, ``ILIKE``, which Trino lacks) is refused with a message that says what
and why. The predicate is then rendered again from the parsed tree, with every identifier quoted, so the SQL that
runs is what was checked, the same text on both engines.
"""

from __future__ import annotations

import sqlglot
from sqlglot import expressions as exp
from sqlglot.errors import ParseError

from alblake.errors import InputError
from alblake.triage.predicate import COLUMNS, ROLLUP_COLUMNS, Where

__all__ = ["COLUMNS", "FUNCTIONS", "ROLLUP_COLUMNS", "Where", "WhereError", "parse_where"]

_STRUCTURE: tuple[type[exp.Expression], ...] = (
    exp.Column, exp.Identifier, exp.Literal, exp.Null, exp.Boolean, exp.Paren, exp.And, exp.Or, exp.Not,
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.In, exp.Between, exp.Like,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.DPipe, exp.Cast, exp.DataType, exp.DataTypeParam,
)
FUNCTIONS: dict[type[exp.Expression], str] = {
    exp.Lower: "lower", exp.Upper: "upper", exp.Length: "length", exp.Substring: "substr",
    exp.StrPosition: "strpos", exp.SplitPart: "split_part", exp.Coalesce: "coalesce", exp.RegexpLike: "regexp_like",
    exp.StartsWith: "starts_with", exp.Abs: "abs", exp.Floor: "floor", exp.Ceil: "ceil",
}
_TYPES = frozenset({exp.DataType.Type.VARCHAR, exp.DataType.Type.INT, exp.DataType.Type.BIGINT,
                    exp.DataType.Type.DOUBLE, exp.DataType.Type.TIMESTAMP})


class WhereError(InputError, ValueError):
    """A ``--where`` that is not a predicate over the curated columns (the message says what is wrong)."""


def _name(node: object) -> str:
    return type(node).__name__.upper()


def _check_node(node: exp.Expression, text: str) -> None:
    if isinstance(node, exp.Column):
        if node.table:
            raise WhereError(f"--where {text!r}: write columns without a table name ({node.sql()})")
        if node.name not in COLUMNS:
            raise WhereError(f"--where {text!r}: unknown column {node.name!r} (columns: {', '.join(sorted(COLUMNS))})")
    elif isinstance(node, exp.In) and node.args.get("query") is not None:
        raise WhereError(f"--where {text!r}: IN takes a list of values, not a subquery")
    elif isinstance(node, exp.DataType) and node.this not in _TYPES:
        raise WhereError(f"--where {text!r}: CAST to {node.sql()} is not allowed (VARCHAR, INTEGER, BIGINT, "
                         "DOUBLE, TIMESTAMP)")
    elif isinstance(node, exp.ILike):
        raise WhereError(f"--where {text!r}: Athena has no ILIKE; write lower(column) LIKE '...'")
    elif isinstance(node, exp.Query | exp.Subquery | exp.Star):
        raise WhereError(f"--where {text!r}: a predicate, not a query ({_name(node)} is not allowed)")
    elif isinstance(node, exp.AggFunc | exp.Window):
        raise WhereError(f"--where {text!r}: aggregates and window functions are not allowed ({node.sql()})")
    elif isinstance(node, _STRUCTURE) or type(node) in FUNCTIONS:
        return
    elif isinstance(node, exp.Func):
        allowed = ", ".join(sorted(FUNCTIONS.values()))
        raise WhereError(f"--where {text!r}: function {node.sql()!r} is not allowed (allowed: {allowed})")
    else:
        raise WhereError(f"--where {text!r}: {_name(node)} is not allowed in a predicate")


def parse_where(text: str) -> Where:
    """Check ``text`` as a predicate over the curated columns; raise ``WhereError`` saying what is wrong."""
    if not text.strip():
        raise WhereError("--where is empty")
    try:
        statements = sqlglot.parse(text, read="trino")
    except ParseError as error:
        first = str(error).splitlines()[0]
        raise WhereError(f"--where {text!r}: not an expression ({first})") from None
    if len(statements) != 1 or statements[0] is None:
        raise WhereError(f"--where {text!r}: one expression, not {len(statements)} statements")
    tree = statements[0]
    query = tree.find(exp.Query, exp.Subquery, exp.Exists)
    if query is not None:
        raise WhereError(f"--where {text!r}: a predicate, not a query ({_name(query)} is not allowed)")
    for node in tree.walk():
        _check_node(node, text)  # type: ignore[arg-type]  # sqlglot's walk yields its Expression nodes
    if not isinstance(tree, exp.Predicate | exp.Connector | exp.Not | exp.Paren | exp.Boolean | exp.Func):
        raise WhereError(f"--where {text!r}: not a predicate (it should be true or false for a request)")
    columns = frozenset(c.name for c in tree.find_all(exp.Column))
    return Where(tree.sql(dialect="trino", identify=True), columns)
