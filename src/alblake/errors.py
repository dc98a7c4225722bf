"""The errors alblake raises on purpose: every one derives from ``AlblakeError``, through the category that says
what went wrong and what a caller can do about it. A message always says what and why, in one line.

- ``InputError``: input that can never be used as it is; retrying will not help. A log object that cannot be
  converted (``CorruptInputError``, ``EmptyInputError``, ``ObjectMissingError``: nothing of it is published),
  and anything else given in a shape alblake does not accept (an event, a manifest, a query name, a line).
- ``ConfigError``: the deployed configuration is wrong (an environment variable, the Glue table's Location).
- ``LocationError``: a location (a lake, an ``s3://`` URL) that cannot be opened.
- ``LakeStateError``: something in a lake that this build cannot read or trust.
- ``ConflictError``: another writer changed what this one was about to change (the next attempt retries).
- ``ServiceError``: an AWS service failed or refused a request.
- ``PartialFailureError``: a run finished and some of its items failed (the message lists them).

The command line catches ``AlblakeError`` once and prints its message (``alblake.cli``).
"""

from __future__ import annotations


class AlblakeError(Exception):
    """An error alblake raises on purpose; its category (a subclass) says what kind."""


class InputError(AlblakeError):
    """Input that can never be used as it is (a log object, an event, a manifest, a name); retrying will not help.
    For a log object: it is permanently unusable and nothing from it was published."""


class CorruptInputError(InputError):
    """The source is not a readable gzip or text stream (corrupt, truncated, not gzip)."""


class EmptyInputError(InputError):
    """The source has zero bytes where content is required (e.g. an empty ``.gz`` object)."""


class ObjectMissingError(InputError):
    """The source object no longer exists (deleted between its event and the read): nothing to ingest."""


class ConfigError(AlblakeError):
    """The deployed configuration is wrong: a required environment variable is missing or invalid, or the
    catalog does not match the lake."""


class LocationError(AlblakeError):
    """A location (a lake directory, an ``s3://`` URL) that cannot be opened; the message says why."""


class LakeStateError(AlblakeError):
    """Something in a lake that this build cannot read or trust (a file, a state object)."""


class ConflictError(AlblakeError):
    """Another writer changed what this one was about to change; a later attempt retries."""


class ServiceError(AlblakeError):
    """An AWS service failed or refused a request (the message names the service and its answer)."""


class PartialFailureError(AlblakeError):
    """A run finished and some of its items failed; the message lists each one and why."""
