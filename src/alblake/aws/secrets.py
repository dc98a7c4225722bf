"""The lake's key from AWS: an SSM Parameter Store parameter (a SecureString, decrypted) or a Secrets Manager
secret. Read once per process by ``alblake.lake.settings.lake_key``; the value is never logged, and an error
names the parameter or secret, never its value."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from alblake.errors import ConfigError


def parameter_key(client: Any, name: str) -> bytes:
    """``GetParameter`` with decryption (a SecureString under the AWS managed key needs only ssm:GetParameter)."""
    try:
        value = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except (ClientError, BotoCoreError) as error:
        raise ConfigError(f"ssm:{name}: the lake's key cannot be read ({_reason(error)})") from None
    return str(value).encode()


def secret_key(client: Any, secret_id: str) -> bytes:
    """``GetSecretValue`` (the current version); a binary secret is used as it is."""
    try:
        response = client.get_secret_value(SecretId=secret_id)
    except (ClientError, BotoCoreError) as error:
        raise ConfigError(f"secretsmanager:{secret_id}: the lake's key cannot be read ({_reason(error)})") from None
    if "SecretBinary" in response:
        return bytes(response["SecretBinary"])
    return str(response["SecretString"]).encode()


def _reason(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "error"))
    return type(error).__name__
