"""Satgas alert rules without I/O: the routes file, routing, masking, digest windows, signing,
and the messages each channel gets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from schemas.errors import ConfigError
from schemas.models.enums import Severity
from schemas.models.hub import Alert
from sinks.alerts.digest import Throttle
from sinks.alerts.masking import mask_name, mask_nip, mask_text, view_of
from sinks.alerts.messages import alert_message, digest_message
from sinks.alerts.routes import example_routes_file, load_routes, parse_routes, route
from sinks.alerts.signing import signature, verify

pytestmark = pytest.mark.unit
T0 = datetime(2024, 11, 5, 2, 0, tzinfo=UTC)
NIP = "198503152010011001"
SECRET = "s3cret-s3cret-s3cret"

ROUTES = f"""
version: 1
recipients:
  - id: nasional
    name: Satgas Nasional
    scope: national
    channels: [{{type: webhook, url: "http://127.0.0.1:1/webhook/nasional", secret: {SECRET}}}]
  - id: jabar
    name: Satgas Jawa Barat
    scope: province
    province: "32"
    channels: [{{type: email, to: [jabar@example.org]}}]
  - id: jatim
    name: Satgas Jawa Timur
    scope: province
    province: "35"
    min_severity: CRITICAL
    channels: [{{type: chat, url: "http://127.0.0.1:1/botX/sendMessage", chat_id: 7}}]
  - id: garut
    name: BKPSDM Garut
    scope: agency
    agency: Pemerintah Kabupaten Garut
    channels:
      - {{type: webhook, url: "http://127.0.0.1:1/webhook/garut", secret: env:GARUT_SECRET}}
      - {{type: webhook, name: backup, url: "http://127.0.0.1:1/b", secret: {SECRET}}}
"""


def alert(region: str = "32.05", *, severity: Severity = Severity.WARNING,
          agency: str | None = None, **changes: object) -> Alert:
    data: dict[str, object] = dict(
        alert_id="al-1", rule="deadline.ppk.soon", severity=severity, region_code=region,
        province_code=region[:2], case_id="case-1", nip=NIP, agency_name=agency,
        title=f"PPK deadline for Budi Santoso ({NIP})",
        detail=f"Budi Santoso, NIP {NIP}, is still not sanctioned; santoso's PPK was told.",
        at=T0, dedupe_key="deadline.ppk.soon:case-1")
    data.update(changes)
    return Alert.model_validate(data)


@pytest.fixture
def routes():  # type: ignore[no-untyped-def]
    return parse_routes(ROUTES, environ={"GARUT_SECRET": "garut-secret-0123456789"})


# -- routes file ----------------------------------------------------------------------------------
def test_the_shipped_example_is_valid() -> None:
    routes = load_routes(example_routes_file())
    scopes = {r.scope for r in routes.recipients}
    assert scopes == {"national", "province", "agency"}


def test_env_secrets_are_resolved(routes) -> None:  # type: ignore[no-untyped-def]
    garut = routes.get("garut")
    assert garut.channels[0].secret.get_secret_value() == "garut-secret-0123456789"
    assert [c.key for c in garut.channels] == ["webhook", "backup"]


@pytest.mark.parametrize(("change", "expected"), [
    (("province: \"32\"", "province: \"99\""), "province '99' is no Kemendagri province code"),
    (("scope: agency", "scope: province"), "a province recipient needs province"),
    (("id: jatim", "id: jabar"), "recipient ids must be unique; repeated: jabar"),
    (("chat_id: 7", "chat_id: 7, colour: red"), "colour: Extra inputs are not permitted"),
    (("to: [jabar@example.org]", "to: [not-an-address]"), "to.0: String should match"),
    (("min_severity: CRITICAL", "min_severity: LOUD"), "min_severity: Input should be"),
    (("version: 1", "version: 1\n  bad: [unclosed"), "not valid YAML at line"),
    (("name: backup, ", "name: webhook, "), "channel names must be unique"),
])
def test_a_bad_file_fails_with_one_line_naming_the_problem(change: tuple[str, str],
                                                           expected: str) -> None:
    text = ROUTES.replace(*change)
    assert text != ROUTES
    with pytest.raises(ConfigError) as err:
        parse_routes(text, source="routes file r.yaml", environ={"GARUT_SECRET": "x" * 20})
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("routes file r.yaml: ")
    assert expected in message


def test_a_missing_env_secret_names_the_variable_and_the_place() -> None:
    with pytest.raises(ConfigError, match=r"recipients\.3\.channels\.0\.secret: environment "
                                          r"variable GARUT_SECRET is not set"):
        parse_routes(ROUTES, environ={})


def test_an_unreadable_file_says_which_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="NETRAL_ALERTS_ROUTES_FILE"):
        load_routes(tmp_path / "missing.yaml")


# -- routing --------------------------------------------------------------------------------------
def test_national_gets_everything_province_its_own_agency_its_own(routes) -> None:  # type: ignore[no-untyped-def]
    ids = lambda a: [r.id for r in route(routes, a)]  # noqa: E731
    assert ids(alert("32.05")) == ["nasional", "jabar"]
    assert ids(alert("32")) == ["nasional", "jabar"]  # a province-level alert
    assert ids(alert("35.78", severity=Severity.WARNING)) == ["nasional"]  # below jatim's min
    assert ids(alert("35.78", severity=Severity.CRITICAL)) == ["nasional", "jatim"]
    assert ids(alert("11.01")) == ["nasional"]
    garut = alert("32.05", agency="  pemerintah kabupaten   GARUT ")
    assert ids(garut) == ["nasional", "jabar", "garut"]
    assert ids(alert("31.71", agency="Pemerintah Kabupaten Garut")) == ["nasional", "garut"]


# -- masking --------------------------------------------------------------------------------------
def test_nip_keeps_first_four_and_last_three() -> None:
    assert mask_nip(NIP) == "1985***********001"


@pytest.mark.parametrize(("name", "initials"), [
    ("Budi Santoso", "B. S."), ("Drs. Asep Suryana, M.Si.", "D. A. S. M. S."), ("siti", "S."),
])
def test_names_become_initials(name: str, initials: str) -> None:
    assert mask_name(name) == initials


def test_text_masks_nips_and_known_names_whole_and_in_parts() -> None:
    out = mask_text(f"Budi Santoso ({NIP}); santoso again; Budiman stays", ["Budi Santoso"])
    assert out == "B. S. (1985***********001); S. again; Budiman stays"


def test_only_the_national_view_is_in_clear() -> None:
    a = alert()
    clear = view_of(a, masked=False)
    masked = view_of(a, masked=True, names=["Budi Santoso"])
    assert clear.nip == NIP and "Budi Santoso" in clear.detail
    assert masked.nip == "1985***********001"
    for text in (masked.title, masked.detail, json.dumps(masked.to_json())):
        assert NIP not in text and "Budi" not in text and "Santoso" not in text
    assert masked.case_id == "case-1" and masked.masked


# -- digest windows -------------------------------------------------------------------------------
def test_past_the_threshold_alerts_wait_for_the_window_end() -> None:
    throttle = Throttle(threshold=3, window=timedelta(minutes=5))
    got = [throttle.admit("jabar", T0 + timedelta(seconds=i)) for i in range(5)]
    assert got == [None, None, None, T0 + timedelta(minutes=5), T0 + timedelta(minutes=5)]
    assert throttle.admit("jatim", T0 + timedelta(seconds=6)) is None  # per recipient
    assert throttle.admit("jabar", T0 + timedelta(minutes=5)) is None  # a new window


def test_a_throttle_needs_sane_numbers() -> None:
    with pytest.raises(ValueError):
        Throttle(threshold=0, window=timedelta(minutes=1))


# -- signing --------------------------------------------------------------------------------------
def _signed(sent_at: datetime) -> tuple[bytes, str, str]:
    body = json.dumps({"sent_at": sent_at.isoformat(), "x": 1}).encode()
    return body, signature(SECRET.encode(), body), str(int(sent_at.timestamp()))


def test_signature_is_hmac_sha256_of_the_body_and_verifies() -> None:
    body, sig, ts = _signed(T0)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify(SECRET.encode(), body, sig, ts, now=T0, tolerance_s=300) is None


def test_tampering_a_wrong_secret_or_an_old_replay_are_refused() -> None:
    body, sig, ts = _signed(T0)
    k = SECRET.encode()
    assert verify(k, body + b" ", sig, ts, now=T0, tolerance_s=300) == \
        "signature does not match the body"
    assert verify(b"other-secret", body, sig, ts, now=T0, tolerance_s=300) is not None
    assert "replay" in (verify(k, body, sig, ts, now=T0 + timedelta(hours=1),
                               tolerance_s=300) or "")
    assert "does not match the signed" in (verify(k, body, sig, str(int(ts) + 1), now=T0,
                                                  tolerance_s=300) or "")
    assert verify(k, body, None, ts, now=T0, tolerance_s=300) is not None


# -- messages -------------------------------------------------------------------------------------
def test_messages_escape_html_and_have_stable_delivery_ids() -> None:
    view = view_of(alert(title="<script>x</script> & co"), masked=True)
    one = alert_message(view, recipient_id="jabar", recipient_name="Satgas Jabar",
                        channel="email", dedupe_key="k")
    again = alert_message(view, recipient_id="jabar", recipient_name="Satgas Jabar",
                          channel="email", dedupe_key="k")
    assert one.delivery_id == again.delivery_id
    assert "<script>" not in one.html and "&lt;script&gt;" in one.html
    assert "<script>" not in one.chat_text
    assert "Kabupaten Garut (32.05)" in one.text
    other = alert_message(view, recipient_id="jatim", recipient_name="J", channel="email",
                          dedupe_key="k")
    assert other.delivery_id != one.delivery_id


def test_a_digest_lists_every_alert_and_takes_the_worst_severity() -> None:
    views = [view_of(alert(severity=s, alert_id=f"a{i}", title=f"t{i}"), masked=True)
             for i, s in enumerate([Severity.INFO, Severity.CRITICAL, Severity.WARNING])]
    msg = digest_message(views, recipient_id="jabar", recipient_name="Satgas Jabar",
                         channel="email", window_end=T0, keys=["a", "b", "c"])
    assert "[CRITICAL]" in msg.subject and "3 more alerts" in msg.subject
    assert all(f"t{i}" in msg.text for i in range(3))
    assert msg.payload["count"] == 3 and len(msg.payload["alerts"]) == 3  # type: ignore[arg-type]
