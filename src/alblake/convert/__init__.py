"""Conversion: one log object (or a batch of small ones) -> staged Parquet and quarantine files, nothing visible.

- ``core``: ``convert_stream`` and ``convert_batch`` (the stream, split by partition-hour, into a ``StagedObject``);
- ``decompress``: the object as blocks of whole lines, gzip inflated on the fly;
- ``parquet``: the staged Parquet files, one per partition-hour (bounded buffering and open files);
- ``parquet_format``: the lake's Parquet settings; every data file, staged or compacted, is written with them;
- ``quarantine``: the quarantine file of an object (lines that are not rows) and its reader.

This module imports nothing: the lake reads and writes its files with ``parquet_format`` and ``quarantine``
without loading the converter.
"""
