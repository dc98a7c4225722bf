"""Where this process reads a lake's key from: ``ssm:NAME`` (SSM Parameter Store) and ``secretsmanager:ID``
(Secrets Manager), registered as key sources of ``alblake.lake.settings`` (which also reads ``file:PATH``).

Like ``alblake.locations`` for lakes, this module decides nothing itself and imports the AWS adapters
(``alblake.aws.secrets``, boto3) only when a key of those kinds is read. The command line and the functions call
``install_key_sources`` once; a key is then read once per process (the functions: once per container).
"""

from __future__ import annotations

from alblake.lake.settings import register_key_source


def _ssm(name: str) -> bytes:
    from alblake.aws.secrets import parameter_key
    from alblake.aws.session import client

    return parameter_key(client("ssm"), name)


def _secrets_manager(secret_id: str) -> bytes:
    from alblake.aws.secrets import secret_key
    from alblake.aws.session import client

    return secret_key(client("secretsmanager"), secret_id)


def install_key_sources() -> None:
    """Make ``ssm:`` and ``secretsmanager:`` keys readable in this process (idempotent)."""
    register_key_source("ssm", _ssm)
    register_key_source("secretsmanager", _secrets_manager)
