"""The ``alblake`` console script (also ``python -m alblake``): the command line of ``alblake.cli``."""
# PYTHON_ARGCOMPLETE_OK  (argcomplete: this console script answers shell completion; README: Shell completion)

from __future__ import annotations

import sys

from alblake.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
