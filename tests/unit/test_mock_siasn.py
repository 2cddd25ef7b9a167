"""The mock SIASN keeps the promises the adapter's exactly-once rests on: auth and idempotency.

Driven through FastAPI's TestClient (the real ASGI app, in process; no network).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.mock_siasn import MockConfig, create_app
from hub.mock_siasn.app import MockState

pytestmark = pytest.mark.unit

NIP = "198503152010011001"
OTHER_NIP = "199001012015022003"
API = "/apisiasn/1.0"


class FakeClock:
    """Token expiry and outages read this instead of the wall clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(**config: Any) -> tuple[TestClient, MockState, FakeClock]:
    app = create_app(MockConfig(**config))
    state: MockState = app.state.siasn
    clock = FakeClock()
    state.clock = clock
    state.outage_until = clock() + state.config.outage_seconds
    return TestClient(app), state, clock


def _tokens(client: TestClient) -> dict[str, str]:
    gw = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                     auth=("netral-dev", "netral-dev-secret"))
    assert gw.status_code == 200, gw.text
    sso = client.post("/sso/token", data={"grant_type": "password",
                                          "username": "netral-operator",
                                          "password": "netral-dev-password"})
    assert sso.status_code == 200, sso.text
    return {"Authorization": f"Bearer {gw.json()['access_token']}",
            "Auth": f"bearer {sso.json()['access_token']}"}


@pytest.fixture
def api() -> Iterator[tuple[TestClient, MockState, FakeClock, dict[str, str]]]:
    client, state, clock = _client(gateway_token_ttl_s=60, sso_token_ttl_s=30)
    with client:
        yield client, state, clock, _tokens(client)


def _block(client: TestClient, headers: dict[str, str], key: str | None, nip: str = NIP,
           path: str = "blokir") -> Any:
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(f"{API}/pns/{path}/{nip}", json={"lingkup": "ALL_SERVICES"},
                       headers={**headers, **extra})


# -- auth ---------------------------------------------------------------------------------------
def test_token_endpoints_refuse_bad_credentials() -> None:
    client, _, _ = _client()
    gw = client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                            "client_id": "netral-dev", "client_secret": "nope"})
    assert gw.status_code == 401
    assert gw.json()["error"] == "invalid_client"
    ok = client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                            "client_id": "netral-dev",
                                            "client_secret": "netral-dev-secret"})
    assert ok.status_code == 200
    assert ok.json()["token_type"] == "Bearer"
    sso = client.post("/sso/token", data={"username": "netral-operator", "password": "x"})
    assert sso.status_code == 401
    assert sso.json()["error"] == "invalid_grant"
    wrong_grant = client.post("/oauth2/token", data={"grant_type": "password"})
    assert wrong_grant.status_code == 400


@pytest.mark.parametrize("drop", ["Authorization", "Auth"])
def test_every_api_call_needs_both_tokens(api: Any, drop: str) -> None:
    client, state, _, headers = api
    partial = {k: v for k, v in headers.items() if k != drop}
    response = client.get(f"{API}/pns/data-utama/{NIP}", headers=partial)
    assert response.status_code == 401
    assert "missing" in response.json()["message"]
    assert _block(client, partial, "k1").status_code == 401
    assert state.effects == []


def test_unknown_or_expired_tokens_are_refused(api: Any) -> None:
    client, state, clock, headers = api
    bad = {**headers, "Auth": "bearer not-a-token"}
    response = client.get(f"{API}/pns/status-blokir/{NIP}", headers=bad)
    assert response.status_code == 401
    assert "SSO token unknown" in response.json()["message"]
    assert client.get(f"{API}/pns/status-blokir/{NIP}", headers=headers).status_code == 200
    clock.now += 31  # the SSO token (30 s) has expired, the gateway token (60 s) not yet
    expired = client.get(f"{API}/pns/status-blokir/{NIP}", headers=headers)
    assert expired.status_code == 401
    assert "SSO token expired" in expired.json()["message"]
    assert state.stats.unauthorized == 2


def test_revoked_tokens_are_refused_and_new_ones_work(api: Any) -> None:
    client, _, _, headers = api
    assert client.post("/_test/revoke-tokens", params={"kind": "sso"}).status_code == 200
    assert client.get(f"{API}/pns/status-blokir/{NIP}", headers=headers).status_code == 401
    assert client.get(f"{API}/pns/status-blokir/{NIP}",
                      headers=_tokens(client)).status_code == 200


# -- data ---------------------------------------------------------------------------------------
def test_data_utama_is_deterministic_and_404s_unknown_nips(api: Any) -> None:
    client, _, _, headers = api
    first = client.get(f"{API}/pns/data-utama/{NIP}", headers=headers)
    second = client.get(f"{API}/pns/data-utama/{NIP}", headers=headers)
    assert first.status_code == 200
    assert first.json() == second.json()
    data = first.json()["data"]
    assert data["nipBaru"] == NIP
    assert data["tglLahir"] == "15-03-1985"
    assert data["jenisKelamin"] == "Pria"
    assert client.get(f"{API}/pns/data-utama/12345", headers=headers).status_code == 404
    assert client.get(f"{API}/pns/data-utama/198513152010011001",  # month 13
                      headers=headers).status_code == 404


# -- idempotency --------------------------------------------------------------------------------
def test_writes_need_an_idempotency_key(api: Any) -> None:
    client, state, _, headers = api
    response = _block(client, headers, None)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["message"]
    assert state.effects == []


def test_replayed_key_returns_the_first_response_and_no_second_effect(api: Any) -> None:
    client, state, _, headers = api
    first = _block(client, headers, "order-1")
    again = _block(client, headers, "order-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["data"]["alreadyInEffect"] is False
    assert [(e.nip, e.action, e.idempotency_key) for e in state.effects] == [
        (NIP, "BLOCK", "order-1")]
    assert state.stats.replays == 1
    status = client.get(f"{API}/pns/status-blokir/{NIP}", headers=headers).json()["data"]
    assert status["blokir"] is True


def test_block_of_a_blocked_nip_with_another_key_has_no_effect(api: Any) -> None:
    client, state, _, headers = api
    assert _block(client, headers, "order-1").status_code == 200
    second = _block(client, headers, "order-2")
    assert second.status_code == 200
    assert second.json()["data"]["alreadyInEffect"] is True
    assert len(state.effects) == 1


def test_unblock_then_block_again_are_two_more_effects(api: Any) -> None:
    client, state, _, headers = api
    _block(client, headers, "b1")
    unblocked = _block(client, headers, "u1", path="buka-blokir")
    assert unblocked.json()["data"]["alreadyInEffect"] is False
    assert unblocked.json()["data"]["blokir"] is False
    again = _block(client, headers, "u2", path="buka-blokir")
    assert again.json()["data"]["alreadyInEffect"] is True
    _block(client, headers, "b2")
    assert [(e.action, e.idempotency_key) for e in state.effects] == [
        ("BLOCK", "b1"), ("UNBLOCK", "u1"), ("BLOCK", "b2")]
    assert [e.seq for e in state.effects] == [1, 2, 3]


def test_key_reused_for_another_request_is_refused(api: Any) -> None:
    client, state, _, headers = api
    _block(client, headers, "order-1")
    other_nip = _block(client, headers, "order-1", nip=OTHER_NIP)
    assert other_nip.status_code == 422
    other_action = _block(client, headers, "order-1", path="buka-blokir")
    assert other_action.status_code == 422
    assert len(state.effects) == 1


def test_effects_endpoint_and_reset(api: Any) -> None:
    client, _, _, headers = api
    _block(client, headers, "order-1")
    body = client.get("/_test/effects").json()
    assert body["count"] == 1
    assert body["effects"][0]["nip"] == NIP
    assert body["effects"][0]["idempotency_key"] == "order-1"
    assert body["effects"][0]["at"].endswith("+00:00")
    assert client.post("/_test/reset").status_code == 200
    assert client.get("/_test/effects").json() == {"count": 0, "effects": []}


# -- faults -------------------------------------------------------------------------------------
def test_injected_errors_happen_before_any_effect_and_are_seeded() -> None:
    def run() -> tuple[list[int], int]:
        client, state, _ = _client(error_rate=0.5, seed=7)
        headers = _tokens(client)
        codes = [_block(client, headers, f"k{i}", nip=NIP).status_code for i in range(40)]
        return codes, len(state.effects)

    codes, effects = run()
    assert set(codes) <= {200, 500, 503}
    assert 5 < codes.count(200) < 35
    assert effects == 1  # only the first success blocks; the rest are already in effect
    assert run() == (codes, effects)  # same seed, same faults


def test_lost_reply_applies_the_effect_and_replay_returns_it() -> None:
    client, state, _ = _client(lost_reply_rate=1.0)
    headers = _tokens(client)
    assert _block(client, headers, "order-1").status_code == 500
    assert len(state.effects) == 1
    state.config = MockConfig()  # the network heals
    replay = _block(client, headers, "order-1")
    assert replay.status_code == 200
    assert replay.json()["data"]["alreadyInEffect"] is False  # the first response, stored
    assert len(state.effects) == 1


def test_outage_answers_503_until_it_ends(api: Any) -> None:
    client, state, clock, headers = api
    assert client.post("/_test/outage", params={"seconds": 5}).status_code == 200
    during = _block(client, headers, "order-1")
    assert during.status_code == 503
    assert "Retry-After" in during.headers
    assert client.get(f"{API}/pns/status-blokir/{NIP}", headers=headers).status_code == 503
    clock.now += 5.1
    assert _block(client, headers, "order-1").status_code == 200
    assert state.stats.outage_rejections == 2
    assert len(state.effects) == 1


def test_outage_at_start_and_fail_writes() -> None:
    client, state, clock = _client(outage_seconds=3)
    headers = _tokens(client)  # token endpoints stay up during an API outage
    assert _block(client, headers, "a").status_code == 503
    clock.now += 3
    client.post("/_test/fail-writes", params={"nip": NIP})
    assert _block(client, headers, "a").status_code == 500
    assert client.get(f"{API}/pns/status-blokir/{NIP}", headers=headers).status_code == 200
    assert _block(client, headers, "b", nip=OTHER_NIP).status_code == 200
    assert [e.nip for e in state.effects] == [OTHER_NIP]


def test_config_rejects_impossible_values() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        MockConfig(error_rate=1.5)
    with pytest.raises(ValueError, match="lifetimes"):
        MockConfig(sso_token_ttl_s=0)
