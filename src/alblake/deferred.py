"""Modules a process imports when it first uses them, rather than when a module that names them is imported.

The command line defers pyarrow's compute, Parquet, dataset and filesystem modules (``alblake.__main__``): together
they take about 45 ms to import, a fifth of the start of ``alblake report``, and the reading commands on a local
lake use none of them (DuckDB reads the files). Commands that do use them (ingest, compact, status) import them at
their first use, so every command behaves as before.

``defer`` puts a stand-in into ``sys.modules`` and onto the parent package. ``import pyarrow.compute as pc`` and
``from pyarrow import fs`` bind the stand-in; its first attribute lookup imports the real module (once, under a
lock: a process may touch it from several threads) and every lookup is forwarded to it. Modules imported by name
later get the real module from ``sys.modules``.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType
from typing import Any

_LOCK = threading.RLock()


class DeferredModule(ModuleType):
    """The stand-in of a module not imported yet (see the module docstring)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_deferred_real"] = None

    def __getattr__(self, attribute: str) -> Any:  # only for what the stand-in's own dict lacks
        return getattr(self.deferred_load(), attribute)

    def deferred_load(self) -> ModuleType:
        """The real module, imported at the first call."""
        real: ModuleType | None = self.__dict__["_deferred_real"]
        if real is not None:
            return real
        with _LOCK:
            real = self.__dict__["_deferred_real"]
            if real is None:
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                real = importlib.import_module(self.__name__)
                self.__dict__["_deferred_real"] = real
        return real


def defer(*names: str) -> None:
    """Defer the import of each module ``names`` (dotted names of submodules; their parent packages are imported
    now). A module already imported stays as it is."""
    for name in names:
        if name in sys.modules:
            continue
        parent, _, child = name.rpartition(".")
        stand_in = DeferredModule(name)
        sys.modules[name] = stand_in
        if parent:
            setattr(importlib.import_module(parent), child, stand_in)


def is_loaded(name: str) -> bool:
    """Whether the module ``name`` has been imported for real (not only deferred)."""
    module = sys.modules.get(name)
    return module is not None and not (isinstance(module, DeferredModule) and module.__dict__["_deferred_real"] is None)
