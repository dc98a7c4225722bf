"""The lake's lifecycle policy: one small object, ``lifecycle/policy.json``, that every writer of the lake reads
(pure core: no AWS; the key is read through a registered key source).

It holds what ingest must apply to every object, wherever it runs (the CLI, the ingest function):

- the privacy settings (``alblake.convert.privacy``) and a *reference* to the lake's key (``ssm:NAME``,
  ``secretsmanager:ID`` or ``file:PATH``), never the key, with a short fingerprint of the key (an HMAC of a
  constant) so that a process holding another key refuses to ingest;
- ``expired_before``: the hour before which every partition-hour has been expired (and stays so: ingest drops the
  rows of earlier hours);
- the criteria of every erasure, as digests of the values (``Criterion``), never the values.

The policy is replaced only by compare-and-swap, each write carrying a fresh write token (a writer told
"condition failed" reads it back: its own bytes mean its write won, as for partition states). Its readers fail
closed: a policy that cannot be read stops the ingest. docs/COMPACTION.md, "Retention and erasure".

Keys: ``lake_key(reference)`` reads a key once per process through the source its scheme names. ``file:`` is
built in; ``ssm:`` and ``secretsmanager:`` are registered by ``alblake.secrets.install_key_sources`` (the CLI and the
functions call it), which reads them with boto3 in ``alblake.aws.secrets``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alblake.convert.privacy import PrivacySettings, normal_address
from alblake.errors import ConfigError, LakeStateError
from alblake.lake.generations import new_write_token
from alblake.ports import ConditionFailedError, ObjectStore

LIFECYCLE_PREFIX = "lifecycle/"
POLICY_KEY = f"{LIFECYCLE_PREFIX}policy.json"
ERASURES_PREFIX = f"{LIFECYCLE_PREFIX}erasures/"
EXPIRED_PREFIX = f"{LIFECYCLE_PREFIX}expired/"
POLICY_FORMAT = 1
ATTEMPTS = 12
KEYED = "hmac-sha256"  # digests under the lake's key
PLAIN = "sha256"  # digests without a key (a lake without one)
ERASABLE_FIELDS = ("client_ip", "trace_id", "domain_name")
_KEY_CHECK_MESSAGE = b"alblake key check"


class PolicyFormatError(LakeStateError, ValueError):
    """A lifecycle policy that cannot be read (the message names it): nothing is ingested until it is fixed."""


class PolicyConflictError(LakeStateError, RuntimeError):
    """Other writers kept changing the lifecycle policy; the operation gave up (a retry succeeds)."""


@dataclass
class Criterion:
    """One erasure: rows whose every listed field has a value whose digest is in its list, and whose ``time`` is
    in [start, end) (each bound optional)."""

    id: str
    at: str  # ISO time it was written
    digest: str  # KEYED or PLAIN
    fields: dict[str, list[str]]  # field -> digests of the normalised values (every stored form)
    start: str | None = None  # ISO datetime (UTC)
    end: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "digest": self.digest,
            "fields": {name: sorted(values) for name, values in sorted(self.fields.items())},
            "start": self.start,
            "end": self.end,
        }

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Criterion:
        fields = {str(k): [str(d) for d in v] for k, v in body["fields"].items()}
        if not fields or set(fields) - set(ERASABLE_FIELDS) or body["digest"] not in (KEYED, PLAIN):
            raise ValueError(f"criterion {body.get('id')!r}: fields {sorted(fields)}, digest {body['digest']!r}")
        return cls(str(body["id"]), str(body["at"]), str(body["digest"]), fields, body.get("start"), body.get("end"))


@dataclass
class LakePolicy:
    """What ``lifecycle/policy.json`` says (defaults: nothing to apply)."""

    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    key: str | None = None  # where the key is (``ssm:NAME``, ``secretsmanager:ID``, ``file:PATH``)
    key_check: str | None = None  # the key's fingerprint (``key_check``)
    expired_before: str | None = None  # "YYYY-MM-DDTHH": every earlier hour is expired
    erasures: list[Criterion] = field(default_factory=list)
    revision: int = 0
    write_token: str = ""

    @property
    def needs_key(self) -> bool:
        """Whether ingest needs the key: keyed client addresses or keyed erasure digests."""
        return self.privacy.needs_key or any(c.digest == KEYED for c in self.erasures)

    def to_json(self) -> bytes:
        body = {
            "format": POLICY_FORMAT,
            "privacy": self.privacy.as_dict(),
            "key": self.key,
            "key_check": self.key_check,
            "expired_before": self.expired_before,
            "erasures": [c.as_dict() for c in self.erasures],
            "revision": self.revision,
            "write_token": self.write_token,
        }
        return (json.dumps(body, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, content: bytes) -> LakePolicy:
        try:
            body = json.loads(content)
            if body.get("format") != POLICY_FORMAT:
                raise PolicyFormatError(f"{POLICY_KEY}: unknown policy format {body.get('format')!r}")
            return cls(
                privacy=PrivacySettings.from_dict(body.get("privacy", {})),
                key=body.get("key"),
                key_check=body.get("key_check"),
                expired_before=body.get("expired_before"),
                erasures=[Criterion.from_dict(c) for c in body.get("erasures", [])],
                revision=int(body.get("revision", 0)),
                write_token=str(body.get("write_token", "")),
            )
        except PolicyFormatError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise PolicyFormatError(
                f"{POLICY_KEY}: unreadable lifecycle policy ({type(error).__name__}: {error}); nothing is ingested "
                "until it is fixed: restore an earlier version (versioned buckets keep them) or rewrite it with "
                "'alblake privacy --lake LAKE ...'"
            ) from None


@dataclass(frozen=True)
class VersionedPolicy:
    policy: LakePolicy
    tag: str | None  # None: the lake has no policy object (every default)


def read_policy(store: ObjectStore) -> VersionedPolicy:
    """The lake's policy and its version (``get_versioned``: a denied read raises, never reads as "none")."""
    versioned = store.get_versioned(POLICY_KEY)
    if versioned is None:
        return VersionedPolicy(LakePolicy(), None)
    return VersionedPolicy(LakePolicy.from_json(versioned.content), versioned.tag)


def update_policy(
    store: ObjectStore, change: Callable[[LakePolicy], bool], *, attempts: int = ATTEMPTS
) -> LakePolicy:
    """Apply ``change`` (which edits the policy it is given and says whether it changed anything) to the current
    policy and write it by compare-and-swap, again on the newer policy when another writer came first."""
    for _ in range(attempts):
        current = read_policy(store)
        policy = current.policy
        if not change(policy):
            return policy
        policy.revision += 1
        policy.write_token = new_write_token()
        content = policy.to_json()
        try:
            store.put_bytes_if(POLICY_KEY, content, current.tag)
        except ConditionFailedError:
            written = store.get_versioned(POLICY_KEY)
            if written is None or written.content != content:  # another writer's: redo on its policy
                continue
        return policy
    raise PolicyConflictError(f"{POLICY_KEY}: gave up after {attempts} conflicting writes")


def set_privacy(store: ObjectStore, changes: Mapping[str, str], key: str | None) -> LakePolicy:
    """The lake's privacy settings (``changes``: some of ``PrivacySettings``' fields) and key reference (None:
    unchanged), changed; the key is read to fingerprint it. A key that would not match the keyed criteria or
    addresses already in the lake is refused."""
    check = key_check(lake_key(key)) if key else None

    def change(policy: LakePolicy) -> bool:
        settings = PrivacySettings(**{**policy.privacy.as_dict(), **changes})
        new_key = key if key is not None else policy.key
        new_check = check if key is not None else policy.key_check
        if settings.needs_key and new_key is None:
            raise ConfigError("client_ip hmac needs the lake's key: give it (ssm:NAME or secretsmanager:ID)")
        if policy.key_check is not None and new_check != policy.key_check and _keyed(policy):
            raise ConfigError(
                "the lake's erasure criteria or its client addresses are keyed with its current key; another key "
                "could not match them. Keep the key (store the same value under the new name)"
            )
        if (settings, new_key, new_check) == (policy.privacy, policy.key, policy.key_check):
            return False
        policy.privacy, policy.key, policy.key_check = settings, new_key, new_check
        return True

    return update_policy(store, change)


def _keyed(policy: LakePolicy) -> bool:
    return policy.privacy.needs_key or any(c.digest == KEYED for c in policy.erasures)


# ------------------------------------------------------------------------------------------------------- keys

KeySource = Callable[[str], bytes]
_SOURCES: dict[str, KeySource] = {}
_KEYS: dict[str, bytes] = {}  # by reference: each key is read once per process


def _file_key(path: str) -> bytes:
    try:
        key = Path(path).read_bytes().strip()
    except OSError as error:
        raise ConfigError(f"file:{path}: the lake's key cannot be read ({error.strerror})") from None
    return key


def register_key_source(scheme: str, source: KeySource) -> None:
    """Make keys ``scheme:NAME`` readable in this process (``source(NAME)`` returns the key's bytes)."""
    _SOURCES[scheme] = source


register_key_source("file", _file_key)


def lake_key(reference: str) -> bytes:
    """The key a reference names, read once per process. Raises ``ConfigError`` (never showing the key)."""
    if reference not in _KEYS:
        scheme, separator, name = reference.partition(":")
        source = _SOURCES.get(scheme)
        if not separator or not name or source is None:
            known = ", ".join(f"{s}:NAME" for s in sorted(_SOURCES))
            raise ConfigError(f"key {reference!r}: this process reads keys from {known}")
        key = source(name)
        if len(key) < 16:
            raise ConfigError(f"key {reference!r}: shorter than 16 bytes; use at least 32 random bytes")
        _KEYS[reference] = key
    return _KEYS[reference]


def forget_keys() -> None:
    """Read every key again on its next use (after a key was replaced, or in tests)."""
    _KEYS.clear()


def key_check(key: bytes) -> str:
    """A fingerprint of the key that reveals nothing of it (16 hex digits of an HMAC of a constant)."""
    return hmac.new(key, _KEY_CHECK_MESSAGE, hashlib.sha256).hexdigest()[:16]


def policy_key(policy: LakePolicy) -> bytes | None:
    """The lake's key when the policy names one (checked against its fingerprint), else None."""
    if policy.key is None:
        return None
    key = lake_key(policy.key)
    if policy.key_check is not None and key_check(key) != policy.key_check:
        raise ConfigError(
            f"the key at {policy.key} is not the key this lake was set up with (fingerprint {policy.key_check}, "
            f"found {key_check(key)}): restore that key's value, or ask whoever replaced it"
        )
    return key


# ---------------------------------------------------------------------------------------------------- digests


def normal_value(field_name: str, value: str) -> str:
    """A value in the one spelling its digests are taken of: addresses as ``ipaddress`` writes them, domains in
    lower case without a trailing dot, trace ids as they are (stripped)."""
    if field_name == "client_ip":
        return normal_address(value)
    if field_name == "domain_name":
        return value.strip().lower().rstrip(".")
    return value.strip()


def value_digest(kind: str, key: bytes | None, field_name: str, value: str) -> str:
    """The digest of a normalised value of a field: HMAC-SHA-256 under the lake's key (KEYED), else SHA-256."""
    message = f"{field_name}\x00{value}".encode()
    if kind == KEYED:
        if key is None:
            raise ConfigError("erasure criteria digested with the lake's key need that key")
        return hmac.digest(key, message, "sha256").hex()  # the one-shot C path (hmac.new costs ~10x more)
    return hashlib.sha256(b"alblake erasure\x00" + message).hexdigest()
