"""The provider emulator, endpoint by endpoint and knob by knob, over real loopback HTTP."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time

import httpx
import pytest
import requests
from werkzeug.test import Client

from delivery_auth import (
    BackoffPolicy,
    ClientCredentialsAuth,
    InvalidClientError,
    TokenEndpointUnavailableError,
    TokenRequestError,
)
from delivery_auth.emulator import (
    CREDENTIALS,
    FAULT_KINDS,
    TRACKER_LEGACY,
    Emulator,
    EmulatorApp,
    EmulatorState,
    NonLoopbackHostError,
)
from delivery_auth.providers import PROVIDERS
from delivery_auth.providers.spec import registry
from delivery_auth.token import jwt_expiry

AUTH_TEST_QUERY = "query AuthTestQuery { carriers(first: 10) { edges { node { id name } } } }"
CLIENT_PROVIDERS = ("tracker", "bringg", "dhl")


@pytest.fixture
def emu():
    with Emulator() as emulator:
        yield emulator


def creds(provider: str) -> dict[str, str]:
    known = CREDENTIALS[provider]
    return {"client_id": known.client_id, "client_secret": known.client_secret}


def fetch_token(emu: Emulator, provider: str, **extra: str) -> dict:
    form = {"grant_type": "client_credentials", **creds(provider), **extra}
    response = requests.post(emu.token_url(provider), data=form, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def graphql(emu: Emulator, header: str | None, query: str = AUTH_TEST_QUERY) -> requests.Response:
    headers = {} if header is None else {"Authorization": header}
    return requests.post(emu.url("tracker", "/graphql"), json={"query": query}, headers=headers)


def error_codes(response: requests.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json().get("errors", [])]


# -- server ---------------------------------------------------------------------------


def test_index_says_it_is_a_test_double(emu):
    body = requests.get(emu.base_url).json()
    assert "test double" in body["warning"]
    assert set(body["providers"]) == set(registry())
    assert "test double" in (Emulator.__doc__ or "")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com"])
def test_refuses_non_loopback_hosts(host):
    with pytest.raises(NonLoopbackHostError, match="loopback"):
        Emulator(host=host)
    Emulator(host=host, allow_non_loopback=True)  # constructing is allowed, nothing binds


def test_rejects_bad_port_and_reports_a_busy_port():
    with pytest.raises(ValueError, match="port"):
        Emulator(port=70000)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        with pytest.raises(OSError, match="cannot listen on 127.0.0.1"):
            Emulator(port=holder.getsockname()[1]).start()
    finally:
        holder.close()


def test_start_stop_are_idempotent_and_urls_need_a_running_server():
    emulator = Emulator()
    with pytest.raises(RuntimeError, match="not running"):
        emulator.base_url
    emulator.start()
    assert emulator.start() is emulator
    assert repr(emulator).endswith(f"{emulator.base_url}>")
    emulator.stop()
    emulator.stop()
    assert "stopped" in repr(emulator)


def test_urls(emu):
    assert emu.url("dhl", "x") == f"{emu.base_url}/dhl/x"
    assert emu.token_url("bringg") == f"{emu.base_url}/bringg/oauth/token"
    assert emu.resource_url("yandex") == f"{emu.base_url}/yandex/api/v1/test"
    with pytest.raises(ValueError, match="tracker, bringg, dhl, yandex"):
        emu.url("no-such-carrier")


def test_unknown_paths_are_404(emu):
    response = requests.get(emu.base_url + "/no-such-carrier/token")
    assert response.status_code == 404
    assert "/tracker/" in response.json()["error_description"]
    assert requests.get(emu.url("tracker", "/nope")).status_code == 404
    assert requests.get(emu.url("yandex", "/nope")).status_code == 404


def test_an_emulator_bug_is_a_500_not_a_provider_answer():
    def broken(request, state, path):
        raise KeyError("bug")

    client = Client(EmulatorApp(EmulatorState(), {"tracker": broken}))
    response = client.get("/tracker/graphql")
    assert response.status_code == 500
    assert response.get_json()["error"] == "emulator_bug"


def test_credentials_are_fixed_and_their_repr_hides_the_secret(emu):
    for provider in ("tracker", "bringg", "dhl", "yandex"):
        known = emu.credentials(provider)
        assert known is CREDENTIALS[provider]
        assert known.client_secret not in repr(known)


def test_knob_validation(emu):
    with pytest.raises(ValueError, match="token_ttl"):
        emu.token_ttl = 0
    with pytest.raises(ValueError, match="clock_offset"):
        emu.clock_offset = float("nan")
    with pytest.raises(ValueError, match="HTTP status"):
        emu.tracker_unauthenticated_status = 42
    with pytest.raises(ValueError, match="outcome"):
        emu.configure_device_flow(outcome="maybe")
    with pytest.raises(ValueError, match="pending_polls"):
        emu.configure_device_flow(pending_polls=-1)
    with pytest.raises(ValueError, match="token_ttl"):
        Emulator(token_ttl=-5)


# -- Delivery Tracker ---------------------------------------------------------------


def test_tracker_token_in_body_or_basic(emu):
    payload = fetch_token(emu, "tracker")
    assert payload["token_type"] == "Bearer"
    assert payload["expires_in"] == 3600
    known = CREDENTIALS["tracker"]
    response = requests.post(
        emu.token_url("tracker"),
        data={"grant_type": "client_credentials"},
        headers={"Authorization": basic(known.client_id, known.client_secret)},
    )
    assert response.status_code == 200
    assert emu.stats.token_requests["tracker"] == 2
    assert [r.client_auth for r in emu.stats.token_log] == ["body", "basic"]


@pytest.mark.parametrize(
    ("data", "headers", "status", "error"),
    [
        (
            {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
            {},
            401,
            "invalid_client",
        ),
        ({"grant_type": "password"}, None, 400, "unsupported_grant_type"),
        ({}, None, 400, "invalid_request"),
        ({"grant_type": "client_credentials"}, "both", 400, "invalid_request"),
    ],
)
def test_tracker_token_errors(emu, data, headers, status, error):
    known = CREDENTIALS["tracker"]
    if headers is None:
        data = {**data, **creds("tracker")}
        headers = {}
    elif headers == "both":
        data = {**data, **creds("tracker")}
        headers = {"Authorization": basic(known.client_id, known.client_secret)}
    response = requests.post(emu.token_url("tracker"), data=data, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == error


def test_tracker_token_wants_a_form_and_post(emu):
    response = requests.post(
        emu.token_url("tracker"), json={"grant_type": "client_credentials", **creds("tracker")}
    )
    assert response.status_code == 400
    assert requests.get(emu.token_url("tracker")).status_code == 405


def test_tracker_graphql_with_token_and_api_key(emu):
    access_token = fetch_token(emu, "tracker")["access_token"]
    response = graphql(emu, f"Bearer {access_token}")
    edges = response.json()["data"]["carriers"]["edges"]
    assert response.status_code == 200
    assert {"id": "kr.cjlogistics", "name": "CJ Logistics"} in [e["node"] for e in edges]
    known = CREDENTIALS["tracker"]
    response = graphql(
        emu,
        f"TRACKQL-API-KEY {known.client_id}:{known.client_secret}",
        "query { carriers(first: 2) { edges { node { id } } } }",
    )
    assert len(response.json()["data"]["carriers"]["edges"]) == 2
    track = graphql(
        emu,
        f"Bearer {access_token}",
        'query { track(carrierId: "x", trackingNumber: "1") { lastEvent { time } } }',
    )
    assert track.json()["data"]["track"]["lastEvent"]["status"]["code"] == "DELIVERED"
    assert emu.stats.resource_requests["tracker"] == 3


def test_tracker_unauthenticated_at_http_200_and_configurable(emu):
    access_token = fetch_token(emu, "tracker")["access_token"]
    assert emu.revoke(access_token)
    response = graphql(emu, f"Bearer {access_token}")
    assert response.status_code == 200
    assert error_codes(response) == ["UNAUTHENTICATED"]
    emu.tracker_unauthenticated_status = 401
    assert graphql(emu, None).status_code == 401
    assert emu.stats.auth_failures["tracker"] == 2


def test_tracker_expired_unknown_and_foreign_tokens_are_unauthenticated(emu):
    access_token = fetch_token(emu, "tracker")["access_token"]
    dhl_token = fetch_token(emu, "dhl")["access_token"]
    assert emu.expire_all("tracker") == 1
    expired = graphql(emu, f"Bearer {access_token}")
    assert expired.json()["errors"][0]["message"] == "Access token expired."
    for header in (f"Bearer {dhl_token}", "Bearer nope", "TRACKQL-API-KEY a:b"):
        assert error_codes(graphql(emu, header)) == ["UNAUTHENTICATED"]


def test_tracker_legacy_client_id_is_refused_as_api_key(emu):
    response = graphql(
        emu, f"TRACKQL-API-KEY {TRACKER_LEGACY.client_id}:{TRACKER_LEGACY.client_secret}"
    )
    assert error_codes(response) == ["UNAUTHENTICATED"]
    assert "2024-05-13" in response.json()["errors"][0]["message"]
    assert fetch_token(
        emu,
        "tracker",
        client_id=TRACKER_LEGACY.client_id,
        client_secret=TRACKER_LEGACY.client_secret,
    )["access_token"]


def test_tracker_bad_requests(emu):
    access_token = fetch_token(emu, "tracker")["access_token"]
    headers = {"Authorization": f"Bearer {access_token}"}
    bad = requests.post(emu.url("tracker", "/graphql"), data=b"{", headers=headers)
    assert bad.status_code == 400
    assert error_codes(bad) == ["BAD_REQUEST"]
    other = graphql(emu, f"Bearer {access_token}", "query { me { id } }")
    assert (other.status_code, error_codes(other)) == (200, ["BAD_REQUEST"])
    assert requests.get(emu.url("tracker", "/graphql")).status_code == 405


# -- Bringg ----------------------------------------------------------------------------


@pytest.mark.parametrize("body_format", ["form", "multipart", "json"])
def test_bringg_accepts_form_multipart_and_json(emu, body_format):
    fields = {"grant_type": "client_credentials", **creds("bringg"), "ttl": "120"}
    url = emu.token_url("bringg")
    if body_format == "form":
        response = requests.post(url, data=fields)
    elif body_format == "multipart":
        response = requests.post(url, files={k: (None, v) for k, v in fields.items()})
    else:
        response = requests.post(url, json={**fields, "ttl": 120})
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["expires_in"] == 120
    assert payload["token_type"] == "Bearer"
    assert isinstance(payload["created_at"], int)
    assert jwt_expiry(payload["access_token"]) == payload["created_at"] + 120
    record = emu.stats.token_log[-1]
    assert (record.body_format, record.params.get("ttl")) == (body_format, "120")


def test_bringg_created_at_follows_the_clock_offset():
    with Emulator(clock_offset=-3600) as emu:
        payload = fetch_token(emu, "bringg")
        assert abs(payload["created_at"] - (time.time() - 3600)) < 60
        emu.clock_offset = 7200
        later = fetch_token(emu, "bringg")
        assert later["created_at"] - payload["created_at"] > 10_000
        assert later["expires_in"] == 3600


@pytest.mark.parametrize(("ttl", "status"), [("abc", 400), ("-5", 400), ("inf", 400)])
def test_bringg_rejects_bad_ttl(emu, ttl, status):
    response = requests.post(
        emu.token_url("bringg"),
        data={"grant_type": "client_credentials", **creds("bringg"), "ttl": ttl},
    )
    assert response.status_code == status
    assert "ttl" in response.json()["error_description"]


def test_bringg_token_errors(emu):
    url = emu.token_url("bringg")
    wrong = requests.post(
        url, data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"}
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert requests.post(url, data=creds("bringg")).status_code == 400
    grant = requests.post(url, data={"grant_type": "implicit", **creds("bringg")})
    assert grant.json()["error"] == "unsupported_grant_type"


def test_bringg_resource_401_and_business_error(emu):
    access_token = fetch_token(emu, "bringg")["access_token"]
    headers = {"Authorization": f"Bearer {access_token}"}
    url = emu.url("bringg", "/services/v2/orders")
    assert requests.post(url, headers=headers, json={}).json()["success"] is True
    business = requests.get(
        emu.url("bringg", "/services/v2/orders/business-error"), headers=headers
    )
    assert (business.status_code, business.json()["success"]) == (200, False)
    emu.revoke_all("bringg")
    rejected = requests.get(url, headers=headers)
    assert rejected.status_code == 401
    assert rejected.json()["success"] is False
    assert requests.get(url).status_code == 401
    assert emu.stats.auth_failures["bringg"] == 2


# -- DHL -------------------------------------------------------------------------------


def test_dhl_token_response(emu):
    payload = fetch_token(emu, "dhl")
    assert payload["client_id"] == CREDENTIALS["dhl"].client_id
    assert (payload["token_type"], payload["expires_in"]) == ("Bearer", 3600)


def test_dhl_invalid_credentials_is_a_problem_document(emu):
    response = requests.post(
        emu.token_url("dhl"),
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json() == {
        "type": "https://api.dhlecs.com/docs/errors/400.0000005",
        "title": "Invalid credentials",
    }


def test_dhl_problem_details_for_malformed_requests(emu):
    url = emu.token_url("dhl")
    missing = requests.post(url, data={"client_id": "x"})
    names = [p["name"] for p in missing.json()["invalidParams"]]
    assert (missing.status_code, names) == (400, ["grant_type", "client_secret"])
    grant = requests.post(url, data={"grant_type": "password", **creds("dhl")})
    assert grant.json()["title"] == "Invalid grant type"
    as_json = requests.post(url, json={"grant_type": "client_credentials", **creds("dhl")})
    assert as_json.status_code == 415


def test_dhl_core_client_surfaces_the_problem(emu):
    auth = ClientCredentialsAuth(emu.token_url("dhl"), "emu-dhl-client", "wrong-secret")
    with pytest.raises(InvalidClientError) as caught:
        auth.get_token()
    assert caught.value.problem_type.endswith("/400.0000005")
    assert "Invalid credentials" in str(caught.value)


def test_dhl_resource_says_access_token_expired(emu):
    access_token = fetch_token(emu, "dhl")["access_token"]
    headers = {"Authorization": f"Bearer {access_token}"}
    url = emu.url("dhl", "/shipping/v4/label")
    assert requests.post(url, headers=headers).json()["status"] == "OK"
    emu.expire_all()
    expired = requests.post(url, headers=headers)
    assert expired.status_code == 401
    assert expired.json()["title"] == "Access token expired"
    unknown = requests.get(url, headers={"Authorization": "Bearer nope"})
    assert unknown.json()["title"] == "Invalid access token"


# -- Yandex ----------------------------------------------------------------------------


def oauth(token: str) -> dict[str, str]:
    return {"Authorization": f"OAuth {token}"}


def test_yandex_test_endpoint(emu):
    known = CREDENTIALS["yandex"]
    response = requests.get(emu.url("yandex", "/api/v1/test"), headers=oauth(known.token))
    assert response.json() == {"message": "OK"}
    other = requests.get(
        emu.url("yandex", "/api/v1/companies/1/orders"), headers=oauth(known.token)
    )
    assert other.status_code == 200
    bearer = requests.get(
        emu.url("yandex", "/api/v1/test"), headers={"Authorization": f"Bearer {known.token}"}
    )
    assert bearer.status_code == 401
    assert "OAuth" in bearer.json()["message"]


def test_yandex_revoked_is_401_and_banned_company_is_403(emu):
    known = CREDENTIALS["yandex"]
    url = emu.url("yandex", "/api/v1/test")
    emu.yandex_company_banned = True
    banned = requests.get(url, headers=oauth(known.token))
    assert (banned.status_code, banned.json()["message"]) == (
        403,
        "Company apikey is unknown or banned",
    )
    emu.yandex_company_banned = False
    emu.revoke_all("yandex")
    assert requests.get(url, headers=oauth(known.token)).status_code == 401


def test_yandex_refresh_grant(emu):
    known = CREDENTIALS["yandex"]
    form = {"grant_type": "refresh_token", "refresh_token": known.refresh_token}
    response = requests.post(
        emu.token_url("yandex"),
        data=form,
        headers={"Authorization": basic(known.client_id, known.client_secret)},
    )
    payload = response.json()
    assert response.status_code == 200
    assert payload["refresh_token"] == known.refresh_token
    assert requests.get(emu.resource_url("yandex"), headers=oauth(payload["access_token"])).ok
    assert "refresh_token" not in emu.stats.token_log[-1].params
    bad = requests.post(
        emu.token_url("yandex"), data={**form, "refresh_token": "x", **creds("yandex")}
    )
    assert bad.json()["error"] == "invalid_grant"
    wrong = requests.post(
        emu.token_url("yandex"),
        data={**form, "client_id": known.client_id, "client_secret": "nope"},
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    emu.revoke_all(refresh_tokens=True)
    gone = requests.post(emu.token_url("yandex"), data={**form, **creds("yandex")})
    assert gone.json()["error"] == "invalid_grant"


def start_device(emu: Emulator) -> dict:
    response = requests.post(
        emu.url("yandex", "/device/code"), data={"client_id": CREDENTIALS["yandex"].client_id}
    )
    assert response.status_code == 200
    return response.json()


def poll(emu: Emulator, device_code: str) -> requests.Response:
    return requests.post(
        emu.token_url("yandex"),
        data={"grant_type": "device_code", "code": device_code, **creds("yandex")},
    )


def test_yandex_device_code_pending_then_success(emu):
    emu.configure_device_flow(pending_polls=2, interval=3)
    started = start_device(emu)
    assert started["interval"] == 3
    assert started["verification_url"] == emu.url("yandex", "/device")
    assert "Test double" in requests.get(started["verification_url"]).text
    codes = [poll(emu, started["device_code"]).json().get("error") for _ in range(2)]
    assert codes == ["authorization_pending", "authorization_pending"]
    done = poll(emu, started["device_code"]).json()
    assert requests.get(emu.resource_url("yandex"), headers=oauth(done["access_token"])).ok
    assert done["refresh_token"]
    assert poll(emu, started["device_code"]).json()["error"] == "invalid_grant"  # used


@pytest.mark.parametrize(
    ("outcome", "error"), [("deny", "access_denied"), ("expire", "expired_token")]
)
def test_yandex_device_code_denied_or_expired(emu, outcome, error):
    emu.configure_device_flow(pending_polls=0, outcome=outcome)
    assert poll(emu, start_device(emu)["device_code"]).json()["error"] == error


def test_yandex_device_code_expires_in_time(emu):
    emu.configure_device_flow(expires_in=0)
    assert poll(emu, start_device(emu)["device_code"]).json()["error"] == "expired_token"


def test_yandex_device_code_needs_a_known_client(emu):
    response = requests.post(emu.url("yandex", "/device/code"), data={"client_id": "x"})
    assert response.status_code == 401


def test_yandex_device_login_helper_against_the_emulator(emu):
    from delivery_auth.yandex import device_login

    emu.configure_device_flow(pending_polls=2)
    shown = []
    waits = []
    known = CREDENTIALS["yandex"]
    token = device_login(
        known.client_id,
        known.client_secret,
        on_code=shown.append,
        oauth_url=emu.url("yandex", ""),
        sleep=waits.append,
    )
    assert len(shown) == 1
    assert waits == [1, 1]
    assert requests.get(emu.resource_url("yandex"), headers=oauth(token.access_token)).ok


# -- faults ------------------------------------------------------------------------------


def token_post(emu: Emulator, provider: str) -> requests.Response:
    return requests.post(
        emu.token_url(provider), data={"grant_type": "client_credentials", **creds(provider)}
    )


@pytest.mark.parametrize("provider", CLIENT_PROVIDERS)
def test_fault_server_error_then_normal(emu, provider):
    emu.inject_fault(provider, "server_error", times=2)
    emu.inject_fault(provider, "server_error", status=500)
    assert [token_post(emu, provider).status_code for _ in range(4)] == [503, 503, 500, 200]


def test_fault_rate_limit_has_retry_after(emu):
    emu.inject_fault("bringg", "rate_limit", retry_after=7)
    response = token_post(emu, "bringg")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")


def test_fault_html_and_garbage(emu):
    emu.inject_fault("dhl", "html")
    emu.inject_fault("dhl", "garbage")
    html = token_post(emu, "dhl")
    assert (html.status_code, html.headers["Content-Type"].split(";")[0]) == (502, "text/html")
    garbage = token_post(emu, "dhl")
    assert garbage.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        garbage.json()


def test_fault_garbage_is_a_token_request_error_for_the_core(emu):
    emu.inject_fault("tracker", "garbage")
    auth = ClientCredentialsAuth(emu.token_url("tracker"), **creds("tracker"))
    with pytest.raises(TokenRequestError, match="not JSON"):
        auth.get_token()


def test_fault_reset_drops_the_connection(emu):
    emu.inject_fault("tracker", "reset")
    with pytest.raises(requests.ConnectionError):
        token_post(emu, "tracker")
    with httpx.Client() as client:
        emu.inject_fault("tracker", "reset")
        with pytest.raises(httpx.TransportError):
            client.post(emu.token_url("tracker"), data={"grant_type": "client_credentials"})
    assert token_post(emu, "tracker").status_code == 200


def test_fault_delay_then_normal_answer(emu):
    emu.inject_fault("dhl", "delay", delay=0.05)
    assert emu.state.pending_faults("dhl") == 1
    assert token_post(emu, "dhl").status_code == 200
    assert emu.state.pending_faults("dhl") == 0


@pytest.mark.parametrize(
    ("provider", "check"),
    [
        ("tracker", lambda r: r.json()["error"] == "invalid_client"),
        ("bringg", lambda r: r.json()["error"] == "invalid_client"),
        ("dhl", lambda r: r.json()["title"] == "Invalid credentials"),
    ],
)
def test_fault_auth_failure_on_the_token_endpoint(emu, provider, check):
    emu.inject_fault(provider, "auth_failure")
    assert check(token_post(emu, provider))


def test_fault_auth_failure_on_resources_despite_a_valid_token(emu):
    emu.inject_fault("dhl", "auth_failure", endpoint="resource")
    access_token = fetch_token(emu, "dhl")["access_token"]
    headers = {"Authorization": f"Bearer {access_token}"}
    first = requests.get(emu.resource_url("dhl"), headers=headers)
    assert (first.status_code, first.json()["title"]) == (401, "Access token expired")
    assert requests.get(emu.resource_url("dhl"), headers=headers).status_code == 200
    emu.inject_fault("tracker", "auth_failure", endpoint="resource")
    assert error_codes(graphql(emu, "Bearer whatever")) == ["UNAUTHENTICATED"]
    emu.inject_fault("yandex", "server_error", endpoint="resource", status=504)
    assert requests.get(emu.resource_url("yandex")).status_code == 504


def test_core_retries_transient_token_faults(emu):
    emu.inject_fault("tracker", "server_error")
    emu.inject_fault("tracker", "rate_limit", retry_after=0)
    auth = ClientCredentialsAuth(
        emu.token_url("tracker"), **creds("tracker"), backoff=BackoffPolicy(base_delay=0.01)
    )
    assert auth.get_token().lifetime == 3600
    assert emu.stats.token_requests["tracker"] == 3
    assert emu.stats.tokens_issued["tracker"] == 1
    emu.inject_fault("bringg", "reset", times=3)
    failing = ClientCredentialsAuth(
        emu.token_url("bringg"), **creds("bringg"), backoff=BackoffPolicy(base_delay=0.01)
    )
    with pytest.raises(TokenEndpointUnavailableError):
        failing.get_token()


def test_fault_validation_and_clearing(emu):
    with pytest.raises(ValueError, match="server_error"):
        emu.inject_fault("dhl", "explode")
    with pytest.raises(ValueError, match="endpoint"):
        emu.inject_fault("dhl", "reset", endpoint="both")
    with pytest.raises(ValueError, match="times"):
        emu.inject_fault("dhl", "reset", times=0)
    with pytest.raises(ValueError, match="status"):
        emu.inject_fault("dhl", "server_error", status=1000)
    with pytest.raises(ValueError, match="delay"):
        emu.inject_fault("dhl", "delay", delay=-1)
    with pytest.raises(ValueError, match="unknown provider"):
        emu.inject_fault("no-such-carrier", "reset")
    emu.inject_fault("dhl", "server_error", times=5)
    emu.clear_faults()
    assert token_post(emu, "dhl").status_code == 200
    assert set(FAULT_KINDS) >= {
        "server_error",
        "rate_limit",
        "delay",
        "garbage",
        "html",
        "reset",
        "auth_failure",
    }


# -- counters, reset, revocation -----------------------------------------------------------


def test_counters_are_thread_safe(emu):
    access_token = fetch_token(emu, "bringg")["access_token"]
    barrier = threading.Barrier(32)

    def call():
        barrier.wait()
        for _ in range(4):
            requests.get(
                emu.resource_url("bringg"), headers={"Authorization": f"Bearer {access_token}"}
            )

    threads = [threading.Thread(target=call) for _ in range(32)]
    for thread in threads:
        thread.start()
    assert emu.stats.resource_requests.wait_for("bringg", 128, timeout=30)
    for thread in threads:
        thread.join()
    assert emu.stats.resource_requests.as_dict() == {
        name: 128 if name == "bringg" else 0 for name in registry()
    }
    assert emu.stats.resource_requests.total == 128
    assert not emu.stats.token_requests.wait_for("dhl", 1, timeout=0.01)


def test_token_log_never_holds_secrets(emu):
    for provider in CLIENT_PROVIDERS:
        fetch_token(emu, provider)
    text = repr(emu.stats.token_log) + repr(emu.stats)
    for provider in CLIENT_PROVIDERS:
        assert CREDENTIALS[provider].client_secret not in text


def test_reset_forgets_tokens_counts_and_knobs():
    with Emulator(token_ttl=60) as emu:
        access_token = fetch_token(emu, "dhl")["access_token"]
        emu.token_ttl = 5
        emu.inject_fault("dhl", "server_error")
        emu.reset()
        assert emu.token_ttl == 60
        assert emu.stats.token_requests.total == 0
        assert emu.state.check_token("dhl", access_token) == "unknown"
        assert fetch_token(emu, "dhl")["expires_in"] == 60


def test_revoke_reports_unknown_tokens_and_counts(emu):
    assert not emu.revoke("never-issued")
    fetch_token(emu, "dhl")
    fetch_token(emu, "bringg")
    assert emu.revoke_all("dhl") == 1
    # bringg + the pre-issued tokens (Yandex's, the static carriers' keys and passwords)
    pre_issued = sum(1 for name in registry() if emu.credentials(name).token)
    assert emu.revoke_all() == 1 + pre_issued


def test_short_lived_tokens_expire_on_the_server():
    with Emulator(token_ttl=0.2) as emu:
        payload = fetch_token(emu, "dhl")
        assert payload["expires_in"] == 0.2
        status = emu.state.check_token
        deadline = time.monotonic() + 5
        while status("dhl", payload["access_token"]) == "ok" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status("dhl", payload["access_token"]) == "expired"


# -- provider classes and from_env against the emulator -----------------------------------


@pytest.mark.parametrize("provider", ["tracker", "bringg", "dhl", "yandex"])
def test_emu_auth_round_trip_and_revocation(emu, provider):
    options = {"method": "oauth2"} if provider == "tracker" else {}
    auth = emu.auth(provider, **options)
    url = emu.resource_url(provider)

    def call():
        if provider == "tracker":
            return requests.post(url, json={"query": AUTH_TEST_QUERY}, auth=auth)
        return requests.get(url, auth=auth)

    assert call().status_code == 200
    before = auth.token_requests
    emu.revoke_all(provider)
    response = call()
    assert response.status_code == 200
    assert len(response.history) == 1
    assert auth.token_requests == before + 1


@pytest.mark.parametrize("provider", ["tracker", "bringg", "dhl", "yandex"])
def test_env_feeds_from_env(emu, provider):
    env = emu.env(provider)
    cls = PROVIDERS[provider]
    if provider == "yandex":
        auth = cls.from_env(
            environ=env, token_url=emu.token_url("yandex"), api_url=emu.url("yandex", "")
        )
        auth.verify()
    else:
        auth = cls.from_env(environ=env, token_url=emu.token_url(provider))
        assert auth.client_id == CREDENTIALS[provider].client_id
        if provider != "tracker":
            assert auth.get_token().access_token
    assert json.dumps(env)


def test_emulator_log_never_holds_tokens_or_secrets(emu, caplog):
    caplog.set_level("DEBUG", logger="delivery_auth")
    tokens = [fetch_token(emu, provider)["access_token"] for provider in CLIENT_PROVIDERS]
    for provider, token in zip(CLIENT_PROVIDERS, tokens, strict=True):
        requests.post(emu.resource_url(provider), headers={"Authorization": f"Bearer {token}"})
    emu.inject_fault("dhl", "reset")
    with pytest.raises(requests.ConnectionError):
        token_post(emu, "dhl")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "emulator: POST /dhl/shipping/v4/label -> 200" in text
    for secret in [*tokens, *(CREDENTIALS[p].client_secret for p in CLIENT_PROVIDERS)]:
        assert secret not in text


def test_accept_token_makes_a_chosen_value_valid(emu):
    emu.accept_token("yandex", "my-stored-token")
    assert requests.get(emu.resource_url("yandex"), headers=oauth("my-stored-token")).ok
    emu.accept_token("dhl", "short-lived", ttl=0)
    assert emu.state.check_token("dhl", "short-lived") == "expired"
    with pytest.raises(ValueError, match="non-empty"):
        emu.accept_token("dhl", "two words")
