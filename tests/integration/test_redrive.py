"""One redrivable path: the log bucket notifies IngestQueue, failures land in its dead-letter queue, and
``alblake redrive`` moves them back to be ingested.

moto has no SQS message move tasks (StartMessageMoveTask, ListMessageMoveTasks): those two calls, and only those,
run against a botocore Stubber (labelled STUBBED below). Everything else is moto in-process: the bucket's
notification to the queue, the queue's redrive policy moving a message to the dead-letter queue after
maxReceiveCount receives, the real ingest handler.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from alblake.aws import redrive
from alblake.aws.redrive import MoveTaskRunningError, Redrive
from alblake.aws.session import forget_clients
from alblake.cli import main
from alblake.schema import glue_table_input
from tests.integration.conftest import (
    ALB_KEY,
    AWS_EXAMPLE_LINES,
    DATABASE,
    LAKE_BUCKET,
    LOG_BUCKET,
    REGION,
    ROOT,
    TABLE,
    Aws,
    FakeContext,
    gz,
)

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS..CloudFormation..WaitConditionHandle")

DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:ingest-dlq"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:ingest"


@pytest.fixture
def queues(aws: Aws) -> Iterator[tuple[Any, str, str]]:
    """IngestQueue and its dead-letter queue as the template declares them (maxReceiveCount 1 here), and the log
    bucket's notification of new .log.gz objects to the queue."""
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="ingest-dlq")["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": "1"})
    queue = sqs.create_queue(QueueName="ingest", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    aws.s3.put_bucket_notification_configuration(
        Bucket=LOG_BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": QUEUE_ARN,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".log.gz"}]}},
                }
            ]
        },
    )
    yield sqs, queue, dlq


def receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    return list(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", []))


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The event the SQS event source mapping hands the function for these messages."""
    return {
        "Records": [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "eventSource": "aws:sqs", "eventSourceARN": QUEUE_ARN, "awsRegion": REGION}
            for m in messages
        ]
    }


def move_back(sqs: Any, dlq: str, queue: str) -> int:
    """moto's stand-in for the SQS move task (moto has none): receive from the dead-letter queue, send the body to
    the ingest queue, delete. What `alblake redrive` asks SQS to do."""
    moved = 0
    while batch := receive(sqs, dlq):
        for message in batch:
            sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def test_a_log_object_that_failed_into_the_dead_letter_queue_is_ingested_once_redriven(
    app: ModuleType, aws: Aws, queues: tuple[Any, str, str]
) -> None:
    sqs, queue, dlq = queues
    [test_event] = receive(sqs, queue)  # S3 sends a test event when the notification is configured
    assert app.handler(sqs_event([test_event]), FakeContext()) == {"batchItemFailures": []}
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=test_event["ReceiptHandle"])

    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES))
    # The function fails the message (here the Glue table is briefly gone: a transient error) ...
    aws.glue.delete_table(DatabaseName=DATABASE, Name=TABLE)
    [notification] = receive(sqs, queue)
    assert app.handler(sqs_event([notification]), FakeContext()) == {
        "batchItemFailures": [{"itemIdentifier": notification["MessageId"]}]
    }
    aws.glue.create_table(DatabaseName=DATABASE, TableInput=glue_table_input(f"s3://{LAKE_BUCKET}/alb_logs/"))
    # ... and after maxReceiveCount receives SQS keeps it in the dead-letter queue (moto: during the next receive).
    assert receive(sqs, queue) == []
    [dead] = receive(sqs, dlq)
    assert dead["Body"] == notification["Body"]  # the S3 notification itself: what a redrive sends back

    assert move_back(sqs, dlq, queue) == 1
    [redriven] = receive(sqs, queue)
    assert app.handler(sqs_event([redriven]), FakeContext()) == {"batchItemFailures": []}
    assert aws.lake_table().num_rows == len(AWS_EXAMPLE_LINES)
    # redriven twice (a move task that is retried, a second redrive): still every row once
    assert app.handler(sqs_event([redriven]), FakeContext()) == {"batchItemFailures": []}
    assert aws.lake_table().num_rows == len(AWS_EXAMPLE_LINES)


# ---------------------------------------------------------------- move tasks (STUBBED: moto has none)


def stubbed_sqs() -> tuple[Any, Stubber]:
    client = boto3.client("sqs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def task(status: str, moved: int, to_move: int | None = 3, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"Status": status, "ApproximateNumberOfMessagesMoved": moved, "SourceArn": DLQ_ARN,
                             "StartedTimestamp": 1_767_225_600_000, **extra}
    if to_move is not None:
        entry["ApproximateNumberOfMessagesToMove"] = to_move
    return entry


def test_stubbed_a_redrive_starts_one_move_to_the_ingest_queue_and_follows_it_to_the_end() -> None:
    client, stub = stubbed_sqs()
    stub.add_response("list_message_move_tasks", {"Results": []}, {"SourceArn": DLQ_ARN, "MaxResults": 1})
    stub.add_response(
        "start_message_move_task", {"TaskHandle": "handle-1"},
        {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN, "MaxNumberOfMessagesPerSecond": 50},
    )
    stub.add_response("list_message_move_tasks", {"Results": [task("RUNNING", 1, TaskHandle="handle-1")]},
                      {"SourceArn": DLQ_ARN, "MaxResults": 1})
    stub.add_response("list_message_move_tasks", {"Results": [task("COMPLETED", 3)]},
                      {"SourceArn": DLQ_ARN, "MaxResults": 1})
    seen: list[str] = []
    with stub:
        move = Redrive(client, DLQ_ARN, QUEUE_ARN)
        assert move.start(rate=50) == "handle-1"
        last = move.wait(on_progress=lambda t: seen.append(t.describe()), sleep=lambda seconds: None)
    assert (last.status, last.moved, last.to_move) == ("COMPLETED", 3, 3)
    assert [line.split(",")[0] for line in seen] == ["running: moved 1 of 3 message(s)",
                                                     "completed: moved 3 of 3 message(s)"]


def test_stubbed_a_second_redrive_while_one_runs_is_refused_with_its_progress_and_how_to_stop_it() -> None:
    client, stub = stubbed_sqs()
    stub.add_response("list_message_move_tasks", {"Results": [task("RUNNING", 2, 5, TaskHandle="h-9")]},
                      {"SourceArn": DLQ_ARN, "MaxResults": 1})
    with stub, pytest.raises(MoveTaskRunningError) as raised:
        Redrive(client, DLQ_ARN, QUEUE_ARN).start()
    message = str(raised.value)
    assert "already running (running: moved 2 of 5 message(s)" in message
    assert "aws sqs cancel-message-move-task --task-handle h-9" in message
    assert "--status" in message


def test_stubbed_sqs_refusing_the_move_is_one_clear_error() -> None:
    client, stub = stubbed_sqs()
    stub.add_response("list_message_move_tasks", {"Results": []}, {"SourceArn": DLQ_ARN, "MaxResults": 1})
    stub.add_client_error("start_message_move_task", "UnsupportedOperation", "Source queue not a DLQ",
                          expected_params={"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN})
    with stub, pytest.raises(redrive.RedriveError, match="UnsupportedOperation: Source queue not a DLQ"):
        Redrive(client, DLQ_ARN, QUEUE_ARN).start()


# ------------------------------------------------------------------ the command (move tasks STUBBED)

STACK_TEMPLATE = {
    "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
    "Outputs": {
        "LakeBucketName": {"Value": LAKE_BUCKET},
        "GlueDatabaseName": {"Value": "alblake"},
        "IngestQueueUrl": {"Value": "https://sqs.us-east-1.amazonaws.com/123456789012/ingest"},
        "IngestDeadLetterQueueUrl": {"Value": "https://sqs.us-east-1.amazonaws.com/123456789012/ingest-dlq"},
    },
}


@pytest.fixture
def stack(aws: Aws, queues: tuple[Any, str, str]) -> Iterator[tuple[Any, str, str]]:
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="prod", TemplateBody=json.dumps(STACK_TEMPLATE)
    )
    forget_clients()
    yield queues
    forget_clients()


def test_redrive_command_of_a_stack_moves_its_dead_letters_and_says_what_is_left(
    stack: tuple[Any, str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, _queue, dlq = stack
    for body in ("one", "two"):
        sqs.send_message(QueueUrl=dlq, MessageBody=body)
    client, stub = stubbed_sqs()
    stub.add_response("list_message_move_tasks", {"Results": []}, {"SourceArn": DLQ_ARN, "MaxResults": 1})
    stub.add_response("start_message_move_task", {"TaskHandle": "h-1"},
                      {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN})
    stub.add_response("list_message_move_tasks", {"Results": [task("COMPLETED", 2, 2)]},
                      {"SourceArn": DLQ_ARN, "MaxResults": ANY})
    monkeypatch.setattr(redrive, "move_task_client", lambda: client)
    with stub:
        assert main(["redrive", "--stack", "prod", "--wait"]) == 0
    out = capsys.readouterr()
    assert "started          moving ~2 message(s)" in out.out
    assert "completed: moved 2 of 2 message(s)" in out.err
    assert "dead-letter left 2 waiting" in out.out  # moto did not move them: the task was stubbed


def test_redrive_command_of_an_empty_dead_letter_queue_starts_nothing(
    stack: tuple[Any, str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(redrive, "move_task_client", lambda: pytest.fail("no move task for an empty queue"))
    assert main(["redrive", "--stack", "prod"]) == 0
    assert "nothing to redrive" in capsys.readouterr().out


def test_redrive_command_needs_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["redrive"]) == 2
    assert "give either --stack NAME or --dlq URL" in capsys.readouterr().err


def test_the_sqs_event_of_events_is_what_the_deployed_function_reads(app: ModuleType, aws: Aws) -> None:
    """events/sqs-batch.json: an SQS batch carrying the log bucket's notification (`sam local invoke -e`)."""
    event = json.loads((ROOT / "events" / "sqs-batch.json").read_text())
    [record] = event["Records"]
    notification = json.loads(record["body"])["Records"][0]["s3"]
    bucket, key = notification["bucket"]["name"], notification["object"]["key"]
    aws.s3.create_bucket(Bucket=bucket)
    aws.put_log(key, gz(AWS_EXAMPLE_LINES), bucket=bucket)
    assert app.handler(event, FakeContext()) == {"batchItemFailures": []}
    assert aws.lake_table().num_rows == len(AWS_EXAMPLE_LINES)
