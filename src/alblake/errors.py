"""Errors raised for input that can never be converted (retrying will not help)."""

from __future__ import annotations


class InputError(Exception):
    """The source object is permanently unusable; nothing from it was published."""


class CorruptInputError(InputError):
    """The source is not a readable gzip or text stream (corrupt, truncated, not gzip)."""


class EmptyInputError(InputError):
    """The source has zero bytes where content is required (e.g. an empty ``.gz`` object)."""


class ObjectMissingError(InputError):
    """The source object no longer exists (deleted between its event and the read): nothing to ingest."""
