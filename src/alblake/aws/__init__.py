"""boto3 adapters for the deployed (Lambda) path.

Each adapter sits behind a small Protocol so the pipeline can be tested with fakes, and takes its boto3
client as a constructor argument (created once per container)."""
