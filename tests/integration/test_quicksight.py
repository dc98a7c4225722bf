"""SpiceRefresher: debounce and error paths (botocore Stubber: moto has no list_ingestions)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from botocore.stub import Stubber

from alblake.aws.quicksight import SpiceRefresher, account_id_from_arn, ingestion_id_for
from alblake.errors import ConfigError
from alblake.service.ingest import LambdaConfig, build_pipeline
from alblake.service.refresh import MIN_REFRESH_MINUTES, RefreshStatus
from tests.integration.conftest import (
    ACCOUNT,
    ALB_KEY,
    AWS_EXAMPLE_LINES,
    DATABASE,
    LAKE_BUCKET,
    REGION,
    Aws,
    FakeContext,
    RecordingMetrics,
    gz,
    s3_event,
)

NOW = datetime(2026, 11, 24, 9, 7, 30, tzinfo=UTC)
DATASET = "alb-logs-dataset"
LIST_PARAMS = {"AwsAccountId": ACCOUNT, "DataSetId": DATASET, "MaxResults": 100}


@pytest.fixture
def qs(aws_env: None) -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("quicksight", region_name=REGION)
    stubber = Stubber(client)
    with stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def refresher(client: Any, minutes: float = 60) -> SpiceRefresher:
    return SpiceRefresher(client, DATASET, min_interval=timedelta(minutes=minutes), clock=lambda: NOW)


def ingestion(
    status: str, created: datetime, ingestion_id: str = "i-1", request_type: str = "INCREMENTAL_REFRESH"
) -> dict[str, Any]:
    return {
        "Arn": f"arn:aws:quicksight:{REGION}:{ACCOUNT}:dataset/{DATASET}/ingestion/{ingestion_id}",
        "IngestionId": ingestion_id,
        "IngestionStatus": status,
        "CreatedTime": created,
        "RequestType": request_type,
    }


def expect_create(stubber: Stubber, ingestion_id: str, ingestion_type: str = "FULL_REFRESH") -> None:
    stubber.add_response(
        "create_ingestion",
        {"Arn": "arn", "IngestionId": ingestion_id, "IngestionStatus": "INITIALIZED", "Status": 201},
        {
            "AwsAccountId": ACCOUNT,
            "DataSetId": DATASET,
            "IngestionId": ingestion_id,
            "IngestionType": ingestion_type,
        },
    )


@pytest.mark.parametrize("status", ["INITIALIZED", "QUEUED", "RUNNING"])
def test_skip_when_in_progress(qs: tuple[Any, Stubber], status: str) -> None:
    client, stubber = qs
    old = NOW - timedelta(hours=5)
    stubber.add_response("list_ingestions", {"Ingestions": [ingestion(status, old)]}, LIST_PARAMS)
    out = refresher(client).request_refresh(ACCOUNT)
    assert out.status is RefreshStatus.SKIPPED_IN_PROGRESS


def test_skip_when_recent(qs: tuple[Any, Stubber]) -> None:
    client, stubber = qs
    recent = NOW - timedelta(minutes=59)
    stubber.add_response("list_ingestions", {"Ingestions": [ingestion("COMPLETED", recent)]}, LIST_PARAMS)
    assert refresher(client).request_refresh(ACCOUNT).status is RefreshStatus.SKIPPED_RECENT


def test_create_when_old(qs: tuple[Any, Stubber]) -> None:
    client, stubber = qs
    items = [
        ingestion("COMPLETED", NOW - timedelta(minutes=61)),
        ingestion("FAILED", NOW - timedelta(days=2)),
    ]
    stubber.add_response("list_ingestions", {"Ingestions": items}, LIST_PARAMS)
    expect_create(stubber, "alblake-20261124T090000Z")
    out = refresher(client).request_refresh(ACCOUNT)
    assert out.status is RefreshStatus.REQUESTED
    assert out.ingestion_id == "alblake-20261124T090000Z"


def test_incremental_when_a_full_refresh_completed_within_a_day(qs: tuple[Any, Stubber]) -> None:
    client, stubber = qs
    items = [
        ingestion("COMPLETED", NOW - timedelta(minutes=61), "inc"),
        ingestion("COMPLETED", NOW - timedelta(hours=23), "full", request_type="FULL_REFRESH"),
    ]
    stubber.add_response("list_ingestions", {"Ingestions": items}, LIST_PARAMS)
    expect_create(stubber, "alblake-20261124T090000Z", "INCREMENTAL_REFRESH")
    out = refresher(client).request_refresh(ACCOUNT)
    assert (out.status, out.ingestion_type) == (RefreshStatus.REQUESTED, "INCREMENTAL_REFRESH")


@pytest.mark.parametrize(
    "history",
    [
        pytest.param([], id="no-ingestion-yet"),
        pytest.param([("COMPLETED", 25, "FULL_REFRESH")], id="last-full-older-than-a-day"),
        pytest.param([("FAILED", 2, "FULL_REFRESH"), ("COMPLETED", 30, "INITIAL_INGESTION")], id="recent-full-failed"),
        pytest.param([("COMPLETED", 2, "INCREMENTAL_REFRESH"), ("COMPLETED", 3, "EDIT")], id="only-incremental"),
    ],
)
def test_full_refresh_at_most_daily_keeps_the_window_bounded(
    qs: tuple[Any, Stubber], history: list[tuple[str, int, str]]
) -> None:
    """Incremental refreshes never drop days that left the window: a full one is due once a day."""
    client, stubber = qs
    items = [ingestion(st, NOW - timedelta(hours=h), f"i-{h}", request_type=rt) for st, h, rt in history]
    stubber.add_response("list_ingestions", {"Ingestions": items}, LIST_PARAMS)
    expect_create(stubber, "alblake-20261124T090000Z", "FULL_REFRESH")
    out = refresher(client).request_refresh(ACCOUNT)
    assert (out.status, out.ingestion_type) == (RefreshStatus.REQUESTED, "FULL_REFRESH")


def test_dataset_without_incremental_configuration_gets_a_full_refresh(qs: tuple[Any, Stubber]) -> None:
    client, stubber = qs
    full = ingestion("COMPLETED", NOW - timedelta(hours=2), request_type="FULL_REFRESH")
    stubber.add_response("list_ingestions", {"Ingestions": [full]}, LIST_PARAMS)
    stubber.add_client_error(
        "create_ingestion",
        "InvalidParameterValueException",
        "Incremental refresh is not configured",
        expected_params={
            "AwsAccountId": ACCOUNT,
            "DataSetId": DATASET,
            "IngestionId": "alblake-20261124T090000Z",
            "IngestionType": "INCREMENTAL_REFRESH",
        },
    )
    expect_create(stubber, "alblake-20261124T090000Z", "FULL_REFRESH")
    out = refresher(client).request_refresh(ACCOUNT)
    assert (out.status, out.ingestion_type) == (RefreshStatus.REQUESTED, "FULL_REFRESH")


class _FlakyQuickSight:
    """A QuickSight client whose list_ingestions answers what botocore's Stubber cannot: a reset connection or a
    body that does not follow the model."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.created: list[dict[str, Any]] = []

    def list_ingestions(self, **kwargs: Any) -> Any:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    def create_ingestion(self, **kwargs: Any) -> dict[str, Any]:
        self.created.append(kwargs)
        return {"IngestionId": kwargs["IngestionId"]}


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(ConnectionResetError(104, "Connection reset by peer"), id="connection-reset"),
        pytest.param({"Ingestions": ["x"]}, id="item-not-an-object"),
        pytest.param({"Ingestions": "x"}, id="ingestions-not-a-list"),
        pytest.param(["x"], id="body-not-an-object"),
    ],
)
def test_a_broken_list_ingestions_is_logged_counted_and_never_raised(answer: Any) -> None:
    client = _FlakyQuickSight(answer)
    metrics = RecordingMetrics()
    log = _WarningLog()
    out = SpiceRefresher(client, DATASET, clock=lambda: NOW, logger=log, metrics=metrics).request_refresh(ACCOUNT)
    assert out.status is RefreshStatus.ERROR
    assert client.created == []  # nothing requested on a listing it could not read
    assert log.warnings == ["SPICE refresh error"]
    assert metrics.values == {"QuickSightRefreshErrors": [1]}


def test_a_broken_refresh_does_not_fail_the_invocation(
    app: ModuleType, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows and partitions are written, the refresh fails with a reset connection, the handler still returns."""
    config = LambdaConfig(lake_bucket=LAKE_BUCKET, glue_database=DATABASE, quicksight_dataset_id=DATASET)
    pipeline = build_pipeline(
        config,
        s3=aws.s3,
        glue=aws.glue,
        quicksight=_FlakyQuickSight(ConnectionResetError(104, "Connection reset by peer")),
        sts=None,
        logger=Logger(service="test"),
        metrics=RecordingMetrics(),
    )
    monkeypatch.setattr(app, "pipeline", lambda: pipeline)
    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES))
    ctx = FakeContext(invoked_function_arn="arn:aws:lambda:us-east-1:210987654321:function:alblake-ingest")
    result = app.handler(s3_event(ALB_KEY), ctx)
    assert result["refresh"] == "error"
    assert [r["status"] for r in result["records"]] == ["processed"]
    assert result["records"][0]["rows"] > 0
    assert result["records"][0]["partitions"]


def test_paginates_until_found(qs: tuple[Any, Stubber]) -> None:
    client, stubber = qs
    stubber.add_response("list_ingestions", {"Ingestions": [], "NextToken": "t"}, LIST_PARAMS)
    stubber.add_response(
        "list_ingestions", {"Ingestions": [ingestion("RUNNING", NOW)]}, {**LIST_PARAMS, "NextToken": "t"}
    )
    assert refresher(client).request_refresh(ACCOUNT).status is RefreshStatus.SKIPPED_IN_PROGRESS


@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [
        ("list_ingestions", "ThrottlingException", RefreshStatus.THROTTLED),
        ("list_ingestions", "ResourceNotFoundException", RefreshStatus.NOT_FOUND),
        ("list_ingestions", "AccessDeniedException", RefreshStatus.ACCESS_DENIED),
        ("list_ingestions", "InternalFailureException", RefreshStatus.ERROR),
        ("create_ingestion", "LimitExceededException", RefreshStatus.LIMIT_EXCEEDED),
        ("create_ingestion", "ThrottlingException", RefreshStatus.THROTTLED),
        ("create_ingestion", "ResourceExistsException", RefreshStatus.ALREADY_REQUESTED),
    ],
)
def test_errors_never_raise(qs: tuple[Any, Stubber], operation: str, code: str, status: RefreshStatus) -> None:
    client, stubber = qs
    if operation == "create_ingestion":
        stubber.add_response("list_ingestions", {"Ingestions": []}, LIST_PARAMS)
    stubber.add_client_error(operation, code, http_status_code=429 if "Throttl" in code else 400)
    out = refresher(client).request_refresh(ACCOUNT)
    assert out.status is status
    assert code in out.detail


def test_not_configured() -> None:
    assert SpiceRefresher(None, "").request_refresh(ACCOUNT).status is RefreshStatus.DISABLED
    assert SpiceRefresher(object(), "").request_refresh(ACCOUNT).status is RefreshStatus.DISABLED


def test_account_id_from_sts_when_no_context(aws: Aws) -> None:
    sts = boto3.client("sts", region_name=REGION)
    client = boto3.client("quicksight", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response("list_ingestions", {"Ingestions": []}, LIST_PARAMS)  # moto's STS: 123456789012
    expect_create(stubber, "alblake-20261124T090000Z")
    with stubber:
        out = SpiceRefresher(client, DATASET, sts_client=sts, clock=lambda: NOW).request_refresh(None)
    assert out.status is RefreshStatus.REQUESTED


def test_no_account_at_all_is_an_error_not_a_raise() -> None:
    assert SpiceRefresher(object(), DATASET).request_refresh(None).status is RefreshStatus.ERROR


def test_helpers() -> None:
    assert account_id_from_arn("arn:aws:lambda:us-east-1:123456789012:function:f:live") == "123456789012"
    assert account_id_from_arn(None) is None
    assert account_id_from_arn("not-an-arn") is None
    a = ingestion_id_for(datetime(2026, 1, 1, 10, 59, tzinfo=UTC), timedelta(minutes=60))
    b = ingestion_id_for(datetime(2026, 1, 1, 10, 0, 1, tzinfo=UTC), timedelta(minutes=60))
    assert a == b == "alblake-20260101T100000Z"
    assert ingestion_id_for(NOW, timedelta(0)) == "alblake-20261124T090700Z"


def test_handler_requests_refresh_with_context_account(
    app: ModuleType, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = boto3.client("quicksight", region_name=REGION)
    stubber = Stubber(client)
    stubber.add_response(
        "list_ingestions",
        {"Ingestions": [ingestion("COMPLETED", datetime.now(UTC) - timedelta(hours=2))]},
        {**LIST_PARAMS, "AwsAccountId": "210987654321"},
    )
    stubber.add_response("create_ingestion", {"IngestionId": "x", "Status": 201})
    config = LambdaConfig(lake_bucket=LAKE_BUCKET, glue_database=DATABASE, quicksight_dataset_id=DATASET)
    pipeline = build_pipeline(
        config,
        s3=aws.s3,
        glue=aws.glue,
        quicksight=client,
        sts=None,
        logger=Logger(service="test"),
        metrics=RecordingMetrics(),
    )
    monkeypatch.setattr(app, "pipeline", lambda: pipeline)
    aws.put_log(ALB_KEY, gz(AWS_EXAMPLE_LINES))
    ctx = FakeContext(invoked_function_arn="arn:aws:lambda:us-east-1:210987654321:function:alblake-ingest")
    with stubber:
        result = app.handler(s3_event(ALB_KEY), ctx)
        stubber.assert_no_pending_responses()
    assert result["refresh"] == "requested"

    # a skipped object writes nothing: no refresh is attempted (no stubbed responses left)
    with stubber:
        result = app.handler(s3_event("AWSLogs/123456789012/ELBAccessLogTestFile"), ctx)
    assert result["refresh"] == "not-needed"


class _WarningLog:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.warnings.append(str(msg) % args)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def error(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def exception(self, msg: object, *args: object, **kwargs: Any) -> None: ...
    def append_keys(self, **additional_keys: object) -> None: ...
    def remove_keys(self, keys: Any) -> None: ...


BASE_ENV = {"LAKE_BUCKET": LAKE_BUCKET, "GLUE_DATABASE": DATABASE}


def test_min_refresh_interval_respects_the_daily_limit() -> None:
    # 32 refreshes per 24 h (Enterprise): never ask more often than every 45 minutes.
    assert MIN_REFRESH_MINUTES == 45
    assert LambdaConfig.from_env(BASE_ENV).quicksight_min_interval == timedelta(minutes=60)
    log = _WarningLog()
    config = LambdaConfig.from_env({**BASE_ENV, "QUICKSIGHT_MIN_REFRESH_MINUTES": "90"}, logger=log)
    assert config.quicksight_min_interval == timedelta(minutes=90)
    assert log.warnings == []
    config = LambdaConfig.from_env({**BASE_ENV, "QUICKSIGHT_MIN_REFRESH_MINUTES": "45"}, logger=log)
    assert config.quicksight_min_interval == timedelta(minutes=45)
    assert log.warnings == []


@pytest.mark.parametrize("raw", ["1", "44.9", "0"])
def test_min_refresh_interval_below_the_limit_is_clamped_with_a_warning(raw: str) -> None:
    log = _WarningLog()
    config = LambdaConfig.from_env({**BASE_ENV, "QUICKSIGHT_MIN_REFRESH_MINUTES": raw}, logger=log)
    assert config.quicksight_min_refresh_minutes == MIN_REFRESH_MINUTES
    assert config.quicksight_min_interval == timedelta(minutes=45)
    (warning,) = log.warnings
    assert f"QUICKSIGHT_MIN_REFRESH_MINUTES={raw} is below 45" in warning
    assert "32 refreshes per 24 h" in warning


def test_min_refresh_interval_cannot_be_bypassed_or_garbage() -> None:
    direct = LambdaConfig(lake_bucket=LAKE_BUCKET, glue_database=DATABASE, quicksight_min_refresh_minutes=1)
    assert direct.quicksight_min_interval == timedelta(minutes=45)
    for raw in ("soon", "inf", "-5", "nan"):  # every setting in minutes: a finite number >= 0
        with pytest.raises(ConfigError, match="QUICKSIGHT_MIN_REFRESH_MINUTES"):
            LambdaConfig.from_env({**BASE_ENV, "QUICKSIGHT_MIN_REFRESH_MINUTES": raw})
