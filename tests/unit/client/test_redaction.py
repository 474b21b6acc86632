"""Secrets (client secret, JWT, pre-signed URL signatures) never reach logs, reprs or errors."""

from __future__ import annotations

import base64
import logging

import pytest

from tap_dap.client import (
    URL,
    DAPClientError,
    DownloadError,
    Object,
    OperationError,
    Resource,
    ServerError,
    SnapshotRequiredError,
    TokenProperties,
)
from tap_dap.client.redaction import QueryStringRedactingFilter, excerpt, redact_text, redact_url
from tests.unit.client.conftest import (
    BASE,
    CLIENT_ID,
    JWT_SIGNATURE,
    LOGIN,
    SECRET,
    URL_SIGNATURE,
    gz,
    make_client,
    make_jwt,
    signed_url,
    token_response,
)

URLS = f"{BASE}/dap/object/url"
TABLES = f"{BASE}/dap/query/canvas/table"
BASIC = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()


def assert_clean(text: str) -> None:
    for secret in (SECRET, BASIC, JWT_SIGNATURE, URL_SIGNATURE, "OLDSIG", "NEWSIG"):
        assert secret not in text, f"{secret!r} leaked into: {text[:300]}"


@pytest.fixture
def mock_transport_logs_like_urllib3():
    """requests-mock stands in for urllib3 here, and logs every URL at DEBUG as urllib3 does.

    The client protects urllib3's request log with QueryStringRedactingFilter; give the stand-in
    the same treatment so the assertion below covers every line a real run would log.
    """
    stand_in = logging.getLogger("requests_mock.adapter")
    redactor = QueryStringRedactingFilter()
    stand_in.addFilter(redactor)
    yield
    stand_in.removeFilter(redactor)


@pytest.mark.usefixtures("mock_transport_logs_like_urllib3")
def test_full_flow_logs_and_errors_are_clean(api, credentials, caplog, tmp_path) -> None:
    caplog.set_level(logging.DEBUG)
    jwt = make_jwt()
    api.post(LOGIN, json=token_response(jwt))
    api.get(
        TABLES,
        [
            {
                "status_code": 401,
                "json": {
                    "error": {"type": "Unauthorized", "uuid": "u", "message": f"bad token {jwt}"}
                },
            },
            {"status_code": 429, "headers": {"Retry-After": "1"}, "text": "slow down"},
            {"json": {"tables": ["accounts"]}},
        ],
    )
    api.post(
        URLS,
        [
            {"json": {"urls": {"J/p.gz": {"url": signed_url("p.gz", "OLDSIG")}}}},
            {"json": {"urls": {"J/p.gz": {"url": signed_url("p.gz", "NEWSIG")}}}},
            {"json": {"urls": {"J/q.gz": {"url": signed_url("q.gz", "OLDSIG")}}}},
        ],
    )
    api.get(
        signed_url("p.gz", "OLDSIG"),
        status_code=403,
        text=f"<Error>expired: {signed_url('p.gz', 'OLDSIG')}</Error>",
    )
    api.get(signed_url("p.gz", "NEWSIG"), content=gz(b'{"a":1}\n'))
    api.get(
        signed_url("q.gz", "OLDSIG"),
        status_code=500,
        text=f"<Error>failed {signed_url('q.gz', 'OLDSIG')}</Error>",
    )

    errors: list[DAPClientError] = []
    with make_client(credentials) as session:
        assert session.get_tables("canvas") == ["accounts"]
        assert list(session.stream_object_records(Object("J/p.gz"))) == [{"a": 1}]
        with pytest.raises(DAPClientError) as info:
            session.download_object(Object("J/q.gz"), str(tmp_path))
        errors.append(info.value)
        resources = session.get_resources([Object("J/q.gz")])
        reprs = [repr(session), repr(resources), str(resources["J/q.gz"].url)]

    assert "HTTP 500" in str(errors[0])
    assert_clean(caplog.text)
    assert_clean(" ".join(str(e) for e in errors))
    assert_clean(" ".join(reprs))
    # The log does say what happened.
    assert "access token rejected" in caplog.text
    assert "requesting a new one" in caplog.text


def test_reprs_hide_secrets(credentials) -> None:
    url = signed_url("p.gz")
    resource = Resource(url, object_id="J/p.gz")
    assert resource.url.url == url  # the real URL stays usable
    assert repr(resource.url) == "URL('https://storage.test/bucket/job-1/p.gz?<redacted>')"
    assert str(resource.url) == "https://storage.test/bucket/job-1/p.gz?<redacted>"
    token = TokenProperties(make_jwt(), 3600, "scope", "Bearer")
    client = make_client(credentials)
    for text in (repr(resource), repr(URL(url)), repr(token), repr(credentials), repr(client)):
        assert_clean(text)


def test_redaction_helpers() -> None:
    assert redact_url("https://u:p@h.test:8443/a/b.gz?X-Amz-Signature=1#f") == (
        "https://h.test:8443/a/b.gz?<redacted>"
    )
    assert redact_url("https://h.test/a") == "https://h.test/a"
    assert redact_text("see https://h.test/x?sig=1 and url: /y?sig=2)") == (
        "see https://h.test/x?<redacted> and url: /y?<redacted>)"
    )
    assert excerpt(b"  a\n\n b  " + b"c" * 300, limit=10) == "a b cccccc…"


def test_urllib3_request_lines_are_redacted() -> None:
    record = logging.LogRecord(
        "urllib3.connectionpool",
        logging.DEBUG,
        __file__,
        1,
        '%s://%s:%s "%s %s %s" %s %s',
        (
            "https",
            "storage.test",
            443,
            "GET",
            f"/b/p.gz?X-Amz-Signature={URL_SIGNATURE}",
            "HTTP/1.1",
            200,
            10,
        ),
        None,
    )
    assert QueryStringRedactingFilter().filter(record)
    assert record.getMessage() == (
        'https://storage.test:443 "GET /b/p.gz?<redacted> HTTP/1.1" 200 10'
    )


def test_the_filter_is_installed_by_the_client(credentials, monkeypatch) -> None:
    # The filter is process-wide and earlier tests built clients: start from a logger without it.
    urllib3_logger = logging.getLogger("urllib3.connectionpool")
    others = [f for f in urllib3_logger.filters if not isinstance(f, QueryStringRedactingFilter)]
    monkeypatch.setattr(urllib3_logger, "filters", others)
    assert not any(isinstance(f, QueryStringRedactingFilter) for f in urllib3_logger.filters)
    with make_client(credentials) as session:
        session.close()
    installed = [f for f in urllib3_logger.filters if isinstance(f, QueryStringRedactingFilter)]
    assert len(installed) == 1
    with make_client(credentials):
        pass  # a second client does not stack a second filter
    assert [f for f in urllib3_logger.filters if isinstance(f, QueryStringRedactingFilter)] == (
        installed
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda text: DAPClientError(text),
        lambda text: ServerError({"x": 1}, status=500, message=text),
        lambda text: OperationError("Processing", "u-1", text, status=500),
        lambda text: SnapshotRequiredError("SnapshotRequired", "u-2", text),
        lambda text: DownloadError(text, object_id="o"),
    ],
)
def test_repr_and_args_of_errors_are_redacted(build) -> None:
    jwt = make_jwt()
    text = (
        f"server said: token {jwt} secret {SECRET} basic {BASIC} url "
        f"{signed_url('p.gz')} path url: /b/p.gz?X-Amz-Signature={URL_SIGNATURE}"
    )
    error = build(text)
    for shown in (repr(error), str(error.args), error.message, str(error)):
        assert_clean(shown)
        assert "<redacted>" in shown
