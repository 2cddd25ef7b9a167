"""The dashboard in a real headless Chromium (Debian's, driven by Playwright; `make chromium`
installs it): a provincial login sees only its province, a case page opens, a new alert and a new
case arrive live over Server-Sent Events, and a public login sees no case page."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from schemas.kafka import KafkaConnection
from schemas.models import CaseState
from sinks.sql import repository
from tests.fixtures.monitor_data import NOW, Story, alert
from tests.fixtures.monitor_server import MonitorServer, serve_monitor

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
LIVE_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def server(topics: KafkaConnection, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[MonitorServer]:
    home = tmp_path_factory.mktemp("dashboard")
    yield from serve_monitor(topics, home, f"sqlite:///{home / 'netral.db'}", poll_s=0.5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(LIVE_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def login(page: Page, server: MonitorServer, role: str) -> None:
    page.goto(f"{server.url}/dashboard")
    expect(page).to_have_url(f"{server.url}/dashboard/login")
    page.fill("#api_key", server.keys[role])
    page.click("#login")
    expect(page).to_have_url(f"{server.url}/dashboard")


def test_provincial_view_and_live_alerts(page: Page, server: MonitorServer,
                                         tmp_path: Path) -> None:
    login(page, server, "province32")
    expect(page.locator("#who")).to_contain_text("Jawa Barat")
    provinces = page.locator("#by-province tr[data-province]")
    expect(provinces).to_have_count(1)
    assert provinces.first.get_attribute("data-province") == "32"
    expect(page.locator("#count-total")).to_have_text("3")

    # a new case in Jawa Barat moves the live counter; one elsewhere does not
    story = Story("A9", "32.01", "Pemerintah Kabupaten Bogor", None, "Ujang Supriatna",
                  [(NOW.date() - timedelta(days=1), CaseState.UNDER_BAWASLU_REVIEW,
                    "bawaslu.reported")])
    elsewhere = Story("B9", "31.72", "Pemerintah Provinsi DKI Jakarta", None, "Joko", story.steps)
    with server.engine.begin() as conn:
        repository.upsert_cases(conn, records=[story.record(), elsewhere.record()])
    expect(page.locator("#count-total")).to_have_text("4")

    page.goto(f"{server.url}/dashboard/ppk")
    rows = page.locator("#cases tr[data-case-id]")
    expect(rows).to_have_count(1)
    assert rows.first.get_attribute("data-province") == "32"
    page.click("a[href='/dashboard/cases/A2']")
    expect(page.locator("#case-state")).to_have_text("Diblokir")
    expect(page.locator("#timeline tr")).to_have_count(7)  # header + six transitions

    denied = page.goto(f"{server.url}/dashboard/cases/B1")
    assert denied is not None and denied.status == 403
    other = page.goto(f"{server.url}/dashboard/ppk?province=31")
    assert other is not None and other.status == 403

    page.goto(f"{server.url}/dashboard/alerts")
    feed = page.locator("#feed li")
    expect(feed).to_have_count(1)
    expect(page.locator("li[data-alert-id='AL-32']")).to_be_visible()
    page.wait_for_function("() => document.querySelector('[sse-connect]') && "
                           "htmx.find('[sse-connect]')['htmx-internal-data'].sseEventSource "
                           "&& htmx.find('[sse-connect]')['htmx-internal-data']"
                           ".sseEventSource.readyState === 1")
    with server.engine.begin() as conn:
        repository.insert_alerts(conn, records=[
            alert("LIVE-32", "32.05", case_id="A2", title="Lonjakan laporan di Garut",
                  when=NOW + timedelta(minutes=5)),
            alert("LIVE-31", "31.71", title="Lonjakan laporan di Jakarta",
                  when=NOW + timedelta(minutes=5)),
        ])
    expect(page.locator("li[data-alert-id='LIVE-32']")).to_contain_text("Lonjakan laporan di "
                                                                       "Garut")
    expect(feed).to_have_count(2)
    assert page.locator("li[data-alert-id='LIVE-31']").count() == 0
    assert feed.first.get_attribute("data-alert-id") == "LIVE-32"  # newest on top
    shot = tmp_path / "dashboard-alerts.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 0


def test_national_pages_render(page: Page, server: MonitorServer) -> None:
    login(page, server, "national")
    expect(page.locator("#by-province tr[data-province]")).to_have_count(3)
    # filter to a province from the overview's table
    page.click("tr[data-province='31'] a[href='/dashboard/ppk?province=31']")
    rows = page.locator("#cases tr[data-case-id]")
    expect(rows).to_have_count(1)
    assert rows.first.get_attribute("data-case-id") == "B3"
    expect(page.locator("h1")).to_contain_text("Jakarta")
    for path, marker in [("/dashboard/deadlines", "#cases"), ("/dashboard/blocked", "#cases"),
                         ("/dashboard/review", "#cases"), ("/dashboard/me", ".ranking"),
                         ("/dashboard/pipeline", "#lag-groups")]:
        response = page.goto(f"{server.url}{path}")
        assert response is not None and response.status == 200, path
        expect(page.locator(marker).first).to_be_visible()
    page.goto(f"{server.url}/dashboard/review")
    expect(page.locator("tr[data-case-id='B2']")).to_be_visible()
    page.goto(f"{server.url}/dashboard/me")
    expect(page.locator(".ranking").first.locator("tr[data-group]").first).to_have_attribute(
        "data-group", "32")


def test_public_login_sees_aggregates_only(page: Page, server: MonitorServer) -> None:
    login(page, server, "public")
    expect(page.locator("#by-state")).to_be_visible()
    response = page.goto(f"{server.url}/dashboard/ppk")
    assert response is not None and response.status == 403


def test_unknown_key_stays_on_the_login_form(page: Page, server: MonitorServer) -> None:
    page.goto(f"{server.url}/dashboard/login")
    page.fill("#api_key", "ntrlm_not-a-key")
    page.click("#login")
    expect(page.locator("#login-error")).to_have_text("Kunci API tidak dikenal.")
