"""Move the ingest queue's dead-letter messages back to be ingested again: SQS message move tasks.

SQS moves the messages itself (``StartMessageMoveTask``: the source is the dead-letter queue, the destination
the ingest queue, or without one each message's original source queue); ``ListMessageMoveTasks`` reports the
newest tasks of a source queue (status, messages moved, messages to move). Only one task per queue can run at a
time, so a start first looks at the newest task and names a running one instead of failing on it.

Every message of the stack's dead-letter queue is an event the ingest function reads (an S3 notification, an
EventBridge "Object Created" event, a backfill or replay message): moved back, it is ingested like any other, and
an object ingested twice is written once (deterministic keys, compare-and-swap of each partition's state).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from alblake.errors import ConflictError, ServiceError

RUNNING = "RUNNING"
FINISHED = frozenset({"COMPLETED", "CANCELLED", "FAILED"})
POLL_SECONDS = 5.0
MAX_RATE = 500  # MaxNumberOfMessagesPerSecond: "The maximum value for messages per second is 500" (SQS API)


class MoveTaskRunningError(ConflictError):
    """A move task of this dead-letter queue is running already (SQS allows one per queue)."""


class RedriveError(ServiceError):
    """SQS refused or failed the move (the message says what SQS answered)."""


@dataclass(frozen=True)
class MoveTask:
    """One message move task, as ``ListMessageMoveTasks`` reports it."""

    status: str
    moved: int
    to_move: int | None  # known once the task was selected to start
    handle: str = ""  # only while RUNNING
    started: datetime | None = None
    failure: str = ""
    destination: str = ""

    @property
    def running(self) -> bool:
        return self.status == RUNNING

    def describe(self) -> str:
        total = "?" if self.to_move is None else f"{self.to_move:,}"
        text = f"{self.status.lower()}: moved {self.moved:,} of {total} message(s)"
        if self.started is not None:
            text += f", started {self.started.isoformat(timespec='seconds')}"
        if self.failure:
            text += f" ({self.failure})"
        return text


@dataclass(frozen=True)
class QueueDepth:
    visible: int
    in_flight: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight


def move_task_client() -> Any:
    """The SQS client that runs the move-task calls (this process's; a test puts a stub in its place: moto has
    no move tasks)."""
    from alblake.aws.session import client

    return client("sqs")


def _call(what: str, call: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return call(**kwargs)
    except ClientError as error:
        detail = error.response.get("Error", {})
        raise RedriveError(f"{what}: {detail.get('Code', '?')}: {detail.get('Message', error)}") from None
    except BotoCoreError as error:
        raise RedriveError(f"{what}: {error}") from None


def queue_arn(sqs: Any, url: str) -> str:
    """The ARN of the queue at ``url``."""
    answer = _call(f"cannot read queue {url}", sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["QueueArn"])
    return str(answer["Attributes"]["QueueArn"])


def queue_depth(sqs: Any, url: str) -> QueueDepth:
    """Messages waiting in the queue at ``url``, and those received but not yet deleted."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = _call(f"cannot read queue {url}", sqs.get_queue_attributes, QueueUrl=url, AttributeNames=names)
    values = attributes["Attributes"]
    return QueueDepth(int(values.get(names[0], 0)), int(values.get(names[1], 0)))


def _task(entry: dict[str, Any]) -> MoveTask:
    started = entry.get("StartedTimestamp")
    to_move = entry.get("ApproximateNumberOfMessagesToMove")
    return MoveTask(
        status=str(entry.get("Status", "?")),
        moved=int(entry.get("ApproximateNumberOfMessagesMoved", 0)),
        to_move=None if to_move is None else int(to_move),
        handle=str(entry.get("TaskHandle", "")),
        started=None if started is None else datetime.fromtimestamp(int(started) / 1000, tz=UTC),
        failure=str(entry.get("FailureReason", "")),
        destination=str(entry.get("DestinationArn", "") or ""),
    )


class Redrive:
    """The move of one dead-letter queue's messages (``source_arn``) to ``destination_arn`` (None: each message's
    original source queue). ``tasks`` is the SQS client that runs the move-task calls."""

    def __init__(self, tasks: Any, source_arn: str, destination_arn: str | None) -> None:
        self._tasks = tasks
        self.source_arn = source_arn
        self.destination_arn = destination_arn

    def latest(self) -> MoveTask | None:
        """The newest move task of the dead-letter queue (None: there never was one, as far as SQS remembers)."""
        answer = _call(
            "cannot list the dead-letter queue's move tasks",
            self._tasks.list_message_move_tasks,
            SourceArn=self.source_arn,
            MaxResults=1,
        )
        results = answer.get("Results", [])
        return _task(results[0]) if results else None

    def start(self, rate: int | None = None) -> str:
        """Start the move; its task handle. Raises ``MoveTaskRunningError`` when a task already runs."""
        running = self.latest()
        if running is not None and running.running:
            raise MoveTaskRunningError(_running_message(running))
        request: dict[str, Any] = {"SourceArn": self.source_arn}
        if self.destination_arn:
            request["DestinationArn"] = self.destination_arn
        if rate is not None:
            request["MaxNumberOfMessagesPerSecond"] = rate
        try:
            answer = self._tasks.start_message_move_task(**request)
        except ClientError as error:
            detail = error.response.get("Error", {})
            raise RedriveError(
                f"SQS refused to start the move: {detail.get('Code', '?')}: {detail.get('Message', error)}"
            ) from None
        except BotoCoreError as error:
            raise RedriveError(f"SQS refused to start the move: {error}") from None
        return str(answer.get("TaskHandle", ""))

    def wait(
        self,
        *,
        on_progress: Callable[[MoveTask], None] = lambda task: None,
        poll_seconds: float = POLL_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> MoveTask:
        """Poll the newest task until it is no longer running; its last report."""
        while True:
            task = self.latest()
            if task is None:
                raise RedriveError("SQS reports no move task for the dead-letter queue")
            on_progress(task)
            if not task.running:
                return task
            sleep(poll_seconds)


def _running_message(task: MoveTask) -> str:
    cancel = f"aws sqs cancel-message-move-task --task-handle {task.handle}" if task.handle else "its task handle"
    return (
        f"a redrive of this dead-letter queue is already running ({task.describe()}); SQS runs one per queue. "
        f"Follow it with 'alblake redrive ... --status' (or --wait), or stop it first: {cancel}"
    )
