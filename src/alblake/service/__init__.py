"""The deployed stack's use cases, apart from the boto3 adapters (``alblake.aws``) they are wired with.

- ``ingest``: the ingest function's pipeline (S3 events -> ``ingest_object`` -> lake, catalog, dashboard refresh);
- ``compaction``: the compaction function's scheduled run within Lambda's time limit;
- ``backfill``: history from the log bucket, sent to the ingest queue (``alblake backfill``);
- ``config``: the functions' configuration from their environment, and the deployed lake they open.
"""
