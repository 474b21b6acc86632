"""Configuration resolution, login, token refresh and re-authentication."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import requests

from tap_dap.client import (
    DAP_API_URL_DEFAULT,
    AuthenticationError,
    ConfigurationError,
    Credentials,
    DAPClient,
    DAPClientError,
    NetworkError,
    RetryPolicy,
    UnexpectedResponseError,
)
from tap_dap.client.auth import AccessToken
from tests.unit.client.conftest import (
    BASE,
    CLIENT_ID,
    LOGIN,
    SECRET,
    calls_to,
    make_client,
    make_jwt,
    token_response,
)

TABLES = f"{BASE}/dap/query/canvas/table"


@pytest.fixture
def no_dap_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DAP_API_URL", "DAP_CLIENT_ID", "DAP_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)


class TestConfiguration:
    def test_base_url_argument_wins_and_trailing_slash_is_stripped(
        self, no_dap_env: None, monkeypatch: pytest.MonkeyPatch, credentials: Credentials
    ) -> None:
        monkeypatch.setenv("DAP_API_URL", "https://env.test")
        client = DAPClient(base_url="https://arg.test/", credentials=credentials)
        assert client.settings.base_url == "https://arg.test"

    def test_base_url_from_env_then_default(
        self, no_dap_env: None, monkeypatch: pytest.MonkeyPatch, credentials: Credentials
    ) -> None:
        assert DAPClient(credentials=credentials).settings.base_url == DAP_API_URL_DEFAULT
        monkeypatch.setenv("DAP_API_URL", "http://localhost:8080/")
        assert DAPClient(credentials=credentials).settings.base_url == "http://localhost:8080"

    @pytest.mark.parametrize(
        ("bad", "shown", "problem"),
        [
            ("api-gateway.instructure.com", "api-gateway.instructure.com…", "expected"),
            ("ftp://dap.test", "ftp://dap.test…", "expected"),
            ("https://", "https://(no host)…", "expected"),
            ("https://u:p@dap.test", "https://dap.test…", "credentials"),
            # a wrong scheme must not print the credentials either
            ("htps://u:p@dap.test/x?token=t0k", "htps://dap.test…", "expected"),
            ("u:p@dap.test", "dap.test…", "expected"),
        ],
    )
    def test_malformed_base_url_is_one_clear_error_without_credentials(
        self, bad: str, shown: str, problem: str, credentials: Credentials
    ) -> None:
        with pytest.raises(ConfigurationError) as info:
            DAPClient(base_url=bad, credentials=credentials)
        message = str(info.value)
        assert message.startswith(f"invalid DAP base URL {shown}: ")
        if problem == "expected":
            assert message.endswith("expected an http(s) URL such as "
                                    "https://api-gateway.instructure.com")  # fmt: skip
        else:
            assert message.endswith("must not contain credentials, a query string or a fragment")
        for text in (message, repr(info.value), str(info.value.args)):
            assert "u:p" not in text and "t0k" not in text

    def test_credentials_from_env(self, no_dap_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DAP_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("DAP_CLIENT_SECRET", SECRET)
        client = DAPClient(base_url=BASE)
        assert repr(client) == f"DAPClient(base_url='{BASE}', client_id='{CLIENT_ID}')"

    @pytest.mark.parametrize(
        ("env", "expected"),
        [({}, "missing DAP client ID"), ({"DAP_CLIENT_ID": "x"}, "missing DAP client secret")],
    )
    def test_missing_credentials(
        self,
        no_dap_env: None,
        monkeypatch: pytest.MonkeyPatch,
        env: dict[str, str],
        expected: str,
    ) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        with pytest.raises(DAPClientError, match=expected):
            DAPClient(base_url=BASE)

    def test_credentials_hide_the_secret(self) -> None:
        creds = Credentials.create(client_id=CLIENT_ID, client_secret=SECRET)
        encoded = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
        assert creds.basic_credentials == encoded
        assert creds.client_region == "us-west-2"
        for text in (repr(creds), str(creds)):
            assert SECRET not in text and encoded not in text

    def test_unknown_option_is_rejected_with_valid_names(self, credentials: Credentials) -> None:
        with pytest.raises(ConfigurationError, match="unknown DAPClient option.*download_wrkers"):
            DAPClient(base_url=BASE, credentials=credentials, download_wrkers=3)

    def test_options_reach_the_settings(self, credentials: Credentials) -> None:
        policy = RetryPolicy(max_attempts=9)
        client = DAPClient(
            base_url=BASE,
            credentials=credentials,
            download_workers=7,
            retry=policy,
            verify_tls="/etc/ssl/ca.pem",
            connect_timeout=3,
        )
        assert client.settings.download_workers == 7
        assert client.settings.retry.max_attempts == 9
        assert client.settings.verify_tls == "/etc/ssl/ca.pem"
        assert client.settings.connect_timeout == 3

    def test_nonsensical_limits_are_rejected(self, credentials: Credentials) -> None:
        with pytest.raises(ConfigurationError, match="download_workers must be positive"):
            DAPClient(base_url=BASE, credentials=credentials, download_workers=0)


class TestLogin:
    def test_login_request_and_bearer_on_api_calls(self, api, session) -> None:
        api.get(TABLES, json={"tables": ["accounts", "users"]})
        assert session.get_tables("canvas") == ["accounts", "users"]

        (login,) = calls_to(api, LOGIN)
        expected = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
        assert login.headers["Authorization"] == f"Basic {expected}"
        assert parse_qs(login.text) == {"grant_type": ["client_credentials"]}
        assert login.headers["Content-Type"] == "application/x-www-form-urlencoded"
        (call,) = calls_to(api, TABLES)
        assert call.headers["Authorization"].startswith("Bearer ey")
        assert call.headers["User-Agent"].startswith("tap-dap/")

    def test_token_is_reused_while_valid(self, api, session) -> None:
        api.get(TABLES, json={"tables": []})
        for _ in range(3):
            session.get_tables("canvas")
        assert len(calls_to(api, LOGIN)) == 1

    def test_expiring_token_triggers_a_new_login(self, api, session) -> None:
        # A 1-hour token that expires in 4 minutes: within the 5-minute refresh margin.
        api.post(
            LOGIN,
            [
                {
                    "json": token_response(
                        make_jwt(timedelta(hours=1), issued_ago=timedelta(minutes=56))
                    )
                },
                {"json": token_response(make_jwt(timedelta(hours=1)))},
            ],
        )
        api.get(TABLES, json={"tables": []})
        session.get_tables("canvas")
        session.get_tables("canvas")  # the first token is already inside the margin
        session.get_tables("canvas")  # the second is good for an hour
        assert len(calls_to(api, LOGIN)) == 2

    def test_401_on_an_api_call_reauthenticates_once_and_retries(self, api, session) -> None:
        first, second = make_jwt(signature="first"), make_jwt(signature="second")
        api.post(LOGIN, [{"json": token_response(first)}, {"json": token_response(second)}])
        api.get(
            TABLES,
            [
                {
                    "status_code": 401,
                    "json": {
                        "error": {"type": "Unauthorized", "uuid": "u1", "message": "token revoked"}
                    },
                },
                {"json": {"tables": ["accounts"]}},
            ],
        )
        assert session.get_tables("canvas") == ["accounts"]
        assert [c.headers["Authorization"] for c in calls_to(api, TABLES)] == [
            f"Bearer {first}",
            f"Bearer {second}",
        ]

    def test_persistent_401_is_one_authentication_error(self, api, session) -> None:
        api.get(
            TABLES,
            status_code=401,
            json={"error": {"type": "Unauthorized", "uuid": "u2", "message": "nope"}},
        )
        with pytest.raises(AuthenticationError) as info:
            session.get_tables("canvas")
        assert str(info.value) == (
            "listing tables of namespace 'canvas': nope [type=Unauthorized, uuid=u2, HTTP 401]"
        )
        assert len(calls_to(api, TABLES)) == 2
        assert len(calls_to(api, LOGIN)) == 2

    def test_wrong_credentials_give_one_clear_error(self, api, session) -> None:
        api.post(
            LOGIN,
            status_code=401,
            json={
                "error": {"type": "AuthenticationError", "uuid": "a-1", "message": "Invalid client"}
            },
        )
        api.get(TABLES, json={"tables": []})
        with pytest.raises(AuthenticationError) as info:
            session.get_tables("canvas")
        assert str(info.value) == (
            f"DAP login at {LOGIN}: DAP rejected the client credentials for client ID "
            f"'{CLIENT_ID}' (Invalid client) [type=AuthenticationError, uuid=a-1, HTTP 401]"
        )
        assert len(calls_to(api, LOGIN)) == 1  # never retried
        assert calls_to(api, TABLES) == []

    def test_oauth_style_rejection_is_an_authentication_error(self, api, session) -> None:
        api.post(
            LOGIN,
            status_code=400,
            json={"error": "invalid_client", "error_description": "bad secret"},
        )
        with pytest.raises(
            AuthenticationError,
            match=r"rejected .* \(bad secret\) "
            r"\[type=invalid_client, HTTP 400\]",
        ):
            session.authenticate()

    def test_mistyped_base_url_gives_one_clear_error(self, api, credentials) -> None:
        # e.g. https://canvas.example.edu instead of the gateway: the login path is an HTML 404.
        api.post(
            LOGIN,
            status_code=404,
            text="<html><body>Page not found</body></html>",
            headers={"Content-Type": "text/html"},
        )
        with make_client(credentials) as session, pytest.raises(DAPClientError) as info:
            session.get_tables("canvas")
        assert str(info.value) == (
            f"DAP login at {LOGIN}: HTTP 404: non-JSON error response (text/html): "
            f"'<html><body>Page not found</body></html>'; is the DAP base URL right ({BASE})?"
        )
        assert len(calls_to(api, LOGIN)) == 1

    def test_html_page_answering_200_is_not_taken_for_a_token(self, api, credentials) -> None:
        api.post(LOGIN, text="<html>welcome</html>", headers={"Content-Type": "text/html"})
        with make_client(credentials) as session, pytest.raises(UnexpectedResponseError) as info:
            session.authenticate()
        assert "is not a DAP token response; is the DAP base URL right" in str(info.value)

    def test_unreachable_host_gives_one_clear_error(self, api, credentials, clock) -> None:
        api.post(
            LOGIN,
            exc=requests.exceptions.ConnectionError(
                "HTTPSConnectionPool(host='dap.test', port=443): Max retries exceeded with url: "
                "/ids/auth/login (Caused by NewConnectionError('<urllib3.connection."
                "HTTPSConnection>: Failed to establish a new connection: "
                "[Errno 111] Connection refused'))"
            ),
        )
        with make_client(credentials) as session, pytest.raises(NetworkError) as info:
            session.get_tables("canvas")
        assert str(info.value) == (
            f"DAP login at {LOGIN}: cannot connect to dap.test ([Errno 111] Connection refused)"
            f" (gave up after 4 attempts in {sum(clock.sleeps):.1f} s)"
        )
        assert len(clock.sleeps) == 3

    def test_token_without_exp_is_refused_without_showing_it(self, api, session) -> None:
        bad = "aGVhZGVy.eyJzdWIiOiJ4In0.SIGNATURE"  # payload {"sub":"x"}: no exp
        api.post(LOGIN, json=token_response(bad))
        with pytest.raises(UnexpectedResponseError, match="numeric `exp`") as info:
            session.authenticate()
        assert "SIGNATURE" not in str(info.value)

    def test_concurrent_threads_share_one_login(self, api, session) -> None:
        api.get(TABLES, json={"tables": ["t"]})
        results: list[list[str]] = []
        threads = [
            threading.Thread(target=lambda: results.append(session.get_tables("canvas")))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [["t"]] * 8
        assert len(calls_to(api, LOGIN)) == 1


class TestAccessToken:
    def test_short_lived_tokens_are_not_refreshed_before_every_call(self) -> None:
        token = AccessToken(make_jwt(timedelta(minutes=2)))
        assert not token.is_expiring()  # refreshed at half-life, not immediately

    def test_repr_shows_expiry_not_token(self) -> None:
        jwt = make_jwt()
        token = AccessToken(jwt)
        assert token.value == jwt
        assert jwt not in repr(token) and jwt not in str(token)
        assert "expires_at=" in repr(token)
