"""alblake: AWS Application Load Balancer access logs -> partitioned Parquet lake."""

__version__ = "0.1.0"
