"""A checked ``--where`` predicate (``Where``) and the columns it may read, apart from the parser that checks it
(``alblake.triage.where``, which needs sqlglot): building and running triage, and every other command, never
import the parser (sqlglot alone takes about as long to import as the rest of ``alblake report``'s own code);
only a ``--where`` does (``alblake.triage.parse_where``)."""

from __future__ import annotations

from dataclasses import dataclass

from alblake.schema import COLUMN_NAMES, PARTITION_KEYS

COLUMNS = frozenset((*COLUMN_NAMES, *PARTITION_KEYS))
# columns the rollup holds with the curated table's values: a predicate on these alone can be read from it
ROLLUP_COLUMNS = frozenset({"elb", "elb_status_code", "target_ip", "target_port", "target_group_arn",
                            "elb_name", "day", "hour"})


@dataclass(frozen=True)
class Where:
    """A checked predicate: its SQL (identifiers quoted) and the columns it reads."""

    sql: str
    columns: frozenset[str]

    @property
    def rollup_ready(self) -> bool:
        """Whether the rollup answers it exactly (it reads only columns the rollup keeps as they are)."""
        return self.columns <= ROLLUP_COLUMNS

