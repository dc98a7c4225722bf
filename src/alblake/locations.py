"""Where a location given by a user is: a local path, or a URL whose scheme names a remote adapter (``s3://``).

The one place that decides "local or remote", for a lake (``open_lake_at``, ``open_existing_lake_at``), its
object store (``open_store_at``), the log objects that paths name (``select_objects``) and a log object named by
its source id (``remote_object``). A scheme registry in the spirit of pyiceberg's ``load_file_io``: each remote
scheme maps to a loader that imports its adapter only when a location of that scheme is used (boto3 for
``s3://``), so local work needs no AWS library and nothing below this module imports ``alblake.aws``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from alblake.errors import AlblakeError, LocationError
from alblake.ingest.filters import EVERY_OBJECT, ObjectFilter
from alblake.ingest.selection import Failure, LogObject, Selection, select_local
from alblake.lake.generational import open_local_lake
from alblake.lake.local import LocalStore
from alblake.ports import Lake, ObjectStore

if TYPE_CHECKING:
    from alblake.replay import SourceRoots


class LakeLocationError(LocationError, ValueError):
    """A lake location this build cannot open (the message says why)."""


class RemoteScheme(Protocol):
    """What the adapter of a remote scheme opens (``alblake.aws.s3_location.S3Scheme`` for ``s3://``)."""

    def open_lake(self, url: str, *, glue_database: str | None) -> Lake: ...

    def open_store(self, url: str) -> ObjectStore: ...

    def select_objects(self, url: str, object_filter: ObjectFilter) -> Selection:
        """The log objects under ``url`` that pass the filter; what cannot be listed is in ``missing``."""
        ...

    def log_object(self, source_id: str) -> LogObject: ...

    def existing_object(self, source_id: str) -> LogObject | Failure:
        """The log object ``source_id`` names, with its size, if it can be read now; else why not."""
        ...


def _s3() -> RemoteScheme:
    from alblake.aws.s3_location import S3Scheme  # boto3 is imported only for an s3:// location

    return S3Scheme()


# scheme -> the loader of its adapter (which raises ImportError when the scheme's libraries are not installed)
SCHEMES: dict[str, Callable[[], RemoteScheme]] = {"s3": _s3}
EXTRAS_HINT = "need the aws extras (pip install 'alblake[aws]')"


def scheme_of(location: str) -> str | None:
    """The registered scheme a location starts with (``"s3"`` for ``s3://...``); None for a local path."""
    name, separator, _ = location.partition("://")
    return name if separator and name in SCHEMES else None


def open_lake_at(location: str | Path, *, glue_database: str | None = None) -> Lake:
    """The lake at a location given by a user: a local directory or ``s3://bucket/prefix``.

    An S3 lake is opened with the standard AWS configuration (profile, region, ``AWS_ENDPOINT_URL``); with
    ``glue_database`` its commits register partitions in that database's ``alb_logs`` table.
    """
    text = str(location)
    if not text.strip():
        raise LakeLocationError("the lake location is empty: give a directory or s3://bucket/prefix")
    scheme = scheme_of(text)
    if glue_database is not None and scheme != "s3":
        raise LakeLocationError(f"{text}: a Glue catalog goes with an s3:// lake only")
    if scheme is not None:
        try:
            return _load(scheme, text, "lakes").open_lake(text, glue_database=glue_database)
        except LocationError as exc:  # not an s3://bucket/prefix URL, no aws extras, an unusable Glue table
            raise LakeLocationError(str(exc)) from exc
        except AlblakeError:
            raise
        except Exception as exc:  # the service cannot be reached or refused (botocore's errors): one line
            what = f"Glue database {glue_database}" if glue_database else "the lake"
            raise LakeLocationError(f"{text}: cannot reach {what} ({service_reason(exc)})") from exc
    if "://" in text:
        raise LakeLocationError(f"{text}: a lake is a local directory or s3://bucket/prefix")
    return open_local_lake(Path(text))


LAKE_FOLDERS = ("alb_logs/", "manifests/", "quarantine/", "compaction/")
WHAT_A_LAKE_IS = (
    "a lake holds alb_logs/, manifests/ and quarantine/ (make one with 'alblake ingest LOGS --lake LOCATION')"
)


def open_existing_lake_at(location: str, *, glue_database: str | None = None) -> Lake:
    """``open_lake_at`` for a lake that must be there already: a directory, or an ``s3://`` prefix, holding the
    lake's folders. Anything else is a ``LakeLocationError`` saying what a lake looks like; an S3 lake that
    cannot be listed (no bucket, no access, no network) is one too, with S3's reason, before any other work."""
    if not location.strip():
        raise LakeLocationError("the lake location is empty: give a directory or s3://bucket/prefix")
    if "://" not in location:
        root = Path(location)
        if not root.is_dir():
            raise LakeLocationError(f"lake directory {location} does not exist")
        if not any((root / folder).is_dir() for folder in LAKE_FOLDERS):
            raise LakeLocationError(f"{location} is not an alblake lake: {WHAT_A_LAKE_IS}")
        return open_lake_at(location, glue_database=glue_database)
    lake = open_lake_at(location, glue_database=glue_database)
    check_lake_reachable(location, must_hold_a_lake=True)
    return lake


def check_lake_reachable(location: str, *, must_hold_a_lake: bool = False) -> None:
    """One listing of a remote lake's prefix, so that a missing bucket, denied access or an unreachable endpoint
    is one clear error before any work (not one per object); with ``must_hold_a_lake``, an empty prefix is one
    too. Local lakes: nothing to check."""
    if scheme_of(location) is None:
        return
    store = open_store_at(location)
    try:
        found = any(next(iter(store.list_keys(folder)), None) is not None for folder in LAKE_FOLDERS[:2])
    except LocationError:
        raise
    except Exception as exc:  # the adapter's own error types (botocore's for S3)
        raise LakeLocationError(f"{location}: cannot list the lake ({service_reason(exc)})") from exc
    if must_hold_a_lake and not found:
        raise LakeLocationError(f"{location} is not an alblake lake (nothing under it): {WHAT_A_LAKE_IS}")


def service_reason(exc: Exception) -> str:
    """An adapter's error in one line: S3's code and message, else the exception's type and text."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        return f"{code}: {message}" if message else str(code or exc)
    return f"{type(exc).__name__}: {exc}"


def open_store_at(location: str) -> ObjectStore:
    """The object store of the lake at ``location`` (a directory or ``s3://bucket/prefix``)."""
    scheme = scheme_of(location)
    if scheme is None:
        return LocalStore(Path(location))
    try:
        return _load(scheme, location, "lakes").open_store(location)
    except LocationError as exc:
        raise LakeLocationError(str(exc)) from exc


def select_objects(paths: Iterable[str], object_filter: ObjectFilter = EVERY_OBJECT) -> Selection:
    """The objects that local paths/globs/directories and ``s3://bucket/prefix`` URLs name, filtered."""
    paths = list(paths)
    selection = select_local([p for p in paths if scheme_of(p) is None], object_filter)
    for url in (p for p in paths if scheme_of(p) is not None):
        try:
            remote = SCHEMES[str(scheme_of(url))]()
        except ImportError:
            selection.missing.append(Failure(url, f"{scheme_of(url)}:// paths {EXTRAS_HINT}"))
            continue
        found = remote.select_objects(url, object_filter)
        selection.objects.extend(found.objects)
        selection.missing.extend(found.missing)
        selection.skipped += found.skipped
    return selection


def remote_object(source_id: str) -> LogObject | None:
    """The log object a remote source id (``s3://bucket/key``) names; None for the id of a local file."""
    scheme = scheme_of(source_id)
    return None if scheme is None else _load(scheme, source_id, "objects").log_object(source_id)


def existing_object(source_id: str, roots: SourceRoots) -> LogObject | Failure:
    """The log object a source id names if it lies under the user's roots and can still be read (a remote one is
    asked for its size); else why not (``alblake.replay.SourceRoots``)."""
    from alblake.replay import local_source

    scheme = scheme_of(source_id)
    if scheme is None:
        return local_source(source_id, roots)
    if not roots.allows_remote(source_id):
        return Failure(source_id, "is not under any --source-root s3://bucket/prefix: not read")
    try:
        return _load(scheme, source_id, "objects").existing_object(source_id)
    except LocationError as exc:
        return Failure(source_id, str(exc))


def _load(scheme: str, location: str, what: str) -> RemoteScheme:
    try:
        return SCHEMES[scheme]()
    except ImportError as exc:  # the scheme's extras (boto3) are not installed
        raise LocationError(f"{location}: {scheme}:// {what} {EXTRAS_HINT}") from exc
