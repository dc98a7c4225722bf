"""Ingestion: log objects -> a lake.

- ``core``: the one core call, ``ingest_object`` (convert -> commit -> discard), which the ingest function and
  the command line share;
- ``selection``: the log objects that paths name (``LocalFile``; ``s3://`` ones come from ``alblake.aws``), and
  ``filters``: which of them a date range or a load balancer takes (by name, without reading them);
- ``planning``: which objects of a run go together (batches of small objects, waves of repeated source ids);
- ``pool``: how the process pool's workers start (and starting them early), and ``runner``: running a plan in
  this process or in that pool (``ingest_paths``, the command line's use case).

This module imports nothing: a caller imports the module it needs (the ingest function only ``core``).
"""
