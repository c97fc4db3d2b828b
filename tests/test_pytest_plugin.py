"""The pytest plugin, used by test files written the way a user would write them."""

from __future__ import annotations

pytest_plugins = ["pytester"]

USER_TESTS = """
import httpx
import pytest
import requests


def test_dhl_label(delivery_emulator):
    auth = delivery_emulator.auth("dhl")
    url = delivery_emulator.url("dhl", "/shipping/v4/label")
    assert requests.get(url, auth=auth).status_code == 200
    delivery_emulator.revoke_all()
    response = requests.get(url, auth=auth)
    assert response.status_code == 200
    assert len(response.history) == 1
    assert delivery_emulator.stats.token_requests["dhl"] == 2


def test_state_is_fresh_for_every_test(delivery_emulator):
    assert delivery_emulator.stats.token_requests.total == 0


def test_tracker_graphql_with_httpx(delivery_emulator):
    auth = delivery_emulator.auth("tracker", method="oauth2")
    query = {"query": "query AuthTestQuery { carriers(first: 3) { edges { node { id } } } }"}
    with httpx.Client(auth=auth) as client:
        body = client.post(delivery_emulator.url("tracker", "/graphql"), json=query).json()
    assert len(body["data"]["carriers"]["edges"]) == 3


@pytest.mark.delivery_emulator(token_ttl=120, clock_offset=-600)
def test_marker_options(delivery_emulator):
    assert delivery_emulator.token_ttl == 120
    assert delivery_emulator.clock_offset == -600
    assert delivery_emulator.auth("bringg").get_token().lifetime == 120


def test_session_one(delivery_emulator_session):
    delivery_emulator_session.auth("dhl").get_token()


def test_session_two_shares_state(delivery_emulator_session):
    assert delivery_emulator_session.stats.token_requests["dhl"] == 1
"""


def test_fixtures_as_a_user_writes_them(pytester):
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=6)


def test_each_test_gets_its_own_port(pytester):
    pytester.makepyfile(
        test_ports="""
        PORTS = []

        def test_a(delivery_emulator):
            PORTS.append(delivery_emulator.port)

        def test_b(delivery_emulator):
            PORTS.append(delivery_emulator.port)
            assert PORTS[0] != PORTS[1]
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=2)


def test_bad_marker_options_are_named(pytester):
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.delivery_emulator(token_tll=5)
        def test_typo(delivery_emulator):
            pass

        @pytest.mark.delivery_emulator(5)
        def test_positional(delivery_emulator):
            pass
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*unknown option(s) token_tll*", "*keyword options only*"])


def test_marker_is_registered(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.delivery_emulator(**options)*"])
