"""The ``alblake`` console script (also ``python -m alblake``): the command line of ``alblake.cli``."""
# PYTHON_ARGCOMPLETE_OK  (argcomplete: this console script answers shell completion; README: Shell completion)

from __future__ import annotations

import sys

from alblake.deferred import defer

# pyarrow's modules that the reading commands never use are imported at their first use (alblake.deferred): this
# comes before the command line's own imports, which name them
COMMAND_LINE_DEFERRED = ("pyarrow.compute", "pyarrow.parquet", "pyarrow.dataset", "pyarrow.fs")
defer(*COMMAND_LINE_DEFERRED)

from alblake.cli import main  # noqa: E402

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
