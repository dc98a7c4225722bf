"""The lake: its layout (``layout``), what a conversion hands over (``staged``), the generational lake behind the
commit seam (``generational``, docs/COMPACTION.md), its compaction runs (``compaction``), repairs (``repair``),
status (``status``) and its local object store (``local``).

Every writer goes through ``Lake.commit`` (``alblake.ports``) and every reader through ``Lake.visible_files``;
``alblake.lake.generational.open_lake`` picks the implementation for a store. A new table format is one more
implementation behind that function. This package module imports nothing, so that importing any part of the lake
(``alblake.ports`` imports ``layout`` and ``staged``) does not import all of it.
"""
