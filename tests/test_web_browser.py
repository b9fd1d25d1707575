"""The web view in a real browser: Debian's headless Chromium, driven by Playwright, against
the real daemon (`slawatch run`) on loopback.

The daemon's store is prepared with two past months of evidence (2025-03 and 2025-10 in
Europe/London, both with a DST change) so nothing depends on today's date: months before the
previous one are computed from the store. Screenshots go to ``$SLAWATCH_SCREENSHOT_DIR`` (e.g.
var/test-screenshots) or the test's tmp_path. axe-core comes from npm (scripts/test.sh installs
it into a cache folder; ``$SLAWATCH_AXE_JS`` names the file).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from playwright import async_api as playwright_api

from monitor.config import load_config
from monitor.sla.calendar import Month, month_grid
from monitor.store.base import TallyRow, WriteBatch
from monitor.store.sqlite import SqliteStore
from monitor.support.faults import Level, Severity
from monitor.support.service import FaultService
from tests.daemon_harness import DaemonProcess, free_port
from tests.peers import missing_peer, require_binary

pytestmark = [
    pytest.mark.peers,
    pytest.mark.timeout(240),
    pytest.mark.asyncio(loop_scope="module"),
]

LONDON = ZoneInfo("Europe/London")
TARGETS = ("sbc-a", "sbc-b")
SLA = "voice-availability"
OUTAGE_START = datetime(2025, 10, 15, 17, 0, tzinfo=UTC)  # 18:00 BST
OUTAGE_BUCKETS = 6
AXE_DEFAULT = Path.home() / ".cache" / "slawatch-npm" / "node_modules" / "axe-core" / "axe.min.js"
ROW_CELLS = "rows => rows.map(r => [r.dataset.day, r.querySelectorAll('rect').length])"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"]


def chromium_path() -> str:
    require_binary("chromium")
    for path in ("/usr/lib/chromium/chromium", shutil.which("chromium")):
        if path and os.access(path, os.X_OK):
            return path
    raise AssertionError("unreachable: require_binary found chromium")


def axe_script() -> Path:
    path = Path(os.environ.get("SLAWATCH_AXE_JS", str(AXE_DEFAULT)))
    if not path.is_file():
        missing_peer(f"axe-core not found at {path}: scripts/test.sh installs it with npm")
    return path


def write_config(directory: Path, port: int) -> Path:
    health = f"http://127.0.0.1:{port}/healthz"
    config = {
        "monitor": {
            "name": "browser-test",
            "state_dir": str(directory / "state"),
            "listen": f"127.0.0.1:{port}",
            "log_level": "warning",
        },
        "targets": [
            {
                "name": name,
                "kind": "http",
                "interval": "10s",
                "timeout": "2s",
                "http": {"url": health},
            }
            for name in TARGETS
        ],
        "services": [{"name": "voice", "targets": list(TARGETS)}],
        "slas": [
            {
                "name": SLA,
                "service": "voice",
                "objective": 99.95,
                "timezone": "Europe/London",
                "monthly_fee": "10000.00",
                "currency": "GBP",
                "credit_tiers": [
                    {"below": 99.95, "at_least": 99.9, "credit_percent": 10},
                    {"below": 99.9, "credit_percent": 25},
                ],
            }
        ],
        "support": {"contracts": [{"name": "uma", "annual_fee": "24000.00", "currency": "GBP"}]},
    }
    path = directory / "slawatch.yaml"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


async def prepare_store(config_path: Path) -> None:
    """Every bucket of 2025-03 and 2025-10 measured, one outage, one late support fault."""
    config = load_config(config_path)
    config.monitor.database_path.parent.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(config.monitor.database_path, vantage=config.monitor.name)
    await store.open()
    try:
        down = {int(OUTAGE_START.timestamp()) + i * 300 for i in range(OUTAGE_BUCKETS)}
        rows = []
        for month in (Month(2025, 3), Month(2025, 10)):
            for epoch in month_grid(month, "Europe/London", 300).starts():
                for name in TARGETS:
                    if name == "sbc-a" and epoch in down:
                        reasons = MappingProxyType({"status_code_503": 10})
                        rows.append(TallyRow("browser-test", name, epoch, 300, 0, 10, reasons))
                    else:
                        rows.append(TallyRow("browser-test", name, epoch, 300, 10, 0))
        await store.write_batch(WriteBatch(tallies=rows))
        assert config.support is not None
        service = FaultService(store, config.support.support_contracts())
        received = datetime(2025, 10, 6, 9, 30, tzinfo=UTC)
        await service.open(
            "uma", "IVR drops calls", Severity.BUSINESS_CRITICAL, received, fault_id="F-1"
        )
        await service.record_level("F-1", Level.ACKNOWLEDGE, datetime(2025, 10, 6, 10, tzinfo=UTC))
        await service.record_level("F-1", Level.SOLVE, datetime(2025, 10, 14, 15, tzinfo=UTC))
    finally:
        await store.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    chromium_path()
    directory = tmp_path_factory.mktemp("web")
    port = free_port()
    config = write_config(directory, port)
    asyncio.run(prepare_store(config))
    process = DaemonProcess(config, port, directory / "daemon.log")
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    chosen = os.environ.get("SLAWATCH_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    """One Chromium for the module (starting one per test costs seconds on a busy machine)."""
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any, daemon: DaemonProcess) -> AsyncIterator[Any]:
    """A fresh context and page per test, collecting console errors and page errors."""
    context = await browser.new_context(viewport={"width": 1340, "height": 900})
    page = await context.new_page()
    page.problems = []
    page.on(
        "console",
        lambda msg: page.problems.append(msg.text) if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    try:
        yield page
    finally:
        await context.close()


async def visit(page: Any, daemon: DaemonProcess, path: str) -> None:
    reply = await page.goto(daemon.base + path)
    assert reply is not None
    assert reply.status == 200, await reply.text()


async def serious_violations(page: Any) -> list[str]:
    await page.add_script_tag(path=str(axe_script()))
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def bucket(moment: datetime) -> str:
    return f'rect[data-t="{int(moment.timestamp())}"]'


class TestSlaMonthInBrowser:
    async def test_outage_cells_are_unavailable_at_their_local_times(
        self, page: Any, daemon: DaemonProcess, shots: Path
    ) -> None:
        """The outage's buckets, found by UTC start, are unavailable cells in the 15 October
        row at 18:00-18:30 BST (x = 216 cells in), and the buckets around them are not."""
        await visit(page, daemon, f"/sla/{SLA}/2025-10")
        for i in range(OUTAGE_BUCKETS):
            start = OUTAGE_START.timestamp() + i * 300
            cell = page.locator(bucket(datetime.fromtimestamp(start, UTC)))
            assert await cell.count() == 1
            info = await cell.evaluate(
                "c => [c.closest('g').dataset.state, c.closest('svg').dataset.day,"
                " c.getAttribute('x')]"
            )
            local = datetime.fromtimestamp(start, LONDON)
            assert info == [
                "unavailable",
                "2025-10-15",
                str((local.hour * 12 + local.minute // 5) * 3),
            ]
        for moment in (
            OUTAGE_START.timestamp() - 300,
            OUTAGE_START.timestamp() + OUTAGE_BUCKETS * 300,
        ):
            state = await page.locator(bucket(datetime.fromtimestamp(moment, UTC))).evaluate(
                "c => c.closest('g').dataset.state"
            )
            assert state == "available"
        assert await page.locator('g[data-state="unavailable"] rect').count() == OUTAGE_BUCKETS
        assert (await page.locator("#outages").inner_text()) == "Outages (1)"
        outage_row = await page.locator("#outage-1").inner_text()
        assert "2025-10-15 18:00 BST" in outage_row
        assert "status_code_503" in outage_row
        await page.screenshot(path=str(shots / "sla-month-2025-10.png"), full_page=True)
        assert page.problems == []

    async def test_dst_days_have_276_and_300_cells(self, page: Any, daemon: DaemonProcess) -> None:
        """Europe/London: 30 March 2025 is 23 hours (276 cells), 26 October 25 hours (300)."""
        await visit(page, daemon, f"/sla/{SLA}/2025-03")
        counts = await page.eval_on_selector_all("svg.hm", ROW_CELLS)
        assert len(counts) == 31
        assert dict(counts)["2025-03-30"] == 276
        assert {n for day, n in counts if day != "2025-03-30"} == {288}
        await visit(page, daemon, f"/sla/{SLA}/2025-10")
        counts = dict(await page.eval_on_selector_all("svg.hm", ROW_CELLS))
        assert counts["2025-10-26"] == 300
        assert counts["2025-10-25"] == 288
        assert page.problems == []

    async def test_tooltip_shows_the_reason(self, page: Any, daemon: DaemonProcess) -> None:
        """Hovering an outage cell shows its local and UTC times, state, reason and target."""
        await visit(page, daemon, f"/sla/{SLA}/2025-10")
        cell = page.locator(bucket(OUTAGE_START))
        title = await cell.evaluate("c => c.closest('g').querySelector('title').textContent")
        assert "18:00–18:30 BST" in title
        assert "(17:00–17:30 UTC)" in title
        assert "status_code_503" in title
        assert "sbc-a" in title
        await cell.hover()
        tip = page.locator("#tip")
        await tip.wait_for(state="visible", timeout=5000)
        assert await tip.inner_text() == title
        assert page.problems == []

    async def test_month_navigation(self, page: Any, daemon: DaemonProcess) -> None:
        """Previous/next links move a month; the overview's month selector opens a month."""
        await visit(page, daemon, f"/sla/{SLA}/2025-10")
        await page.click("a[rel=prev]")
        await page.wait_for_url(f"**/sla/{SLA}/2025-09")
        assert "2025-09" in await page.locator("h1").inner_text()
        await page.click("a[rel=next]")
        await page.wait_for_url(f"**/sla/{SLA}/2025-10")
        await visit(page, daemon, "/?month=2025-10")
        assert await page.locator("#month-select").input_value() == "2025-10"
        async with page.expect_navigation():
            await page.select_option("#month-select", "2025-09")  # the optional script submits
        assert page.url.endswith("/?month=2025-09")
        await page.select_option("#month-select", "2025-10")
        await page.click("form.months button[type=submit]")  # and without script
        await page.wait_for_url("**/?month=2025-10")
        await page.click(f"a[href='/sla/{SLA}/2025-10']")
        await page.wait_for_url(f"**/sla/{SLA}/2025-10")
        assert page.problems == []

    async def test_claim_download(self, page: Any, daemon: DaemonProcess) -> None:
        """The download link saves the claim draft the report prints."""
        await visit(page, daemon, f"/sla/{SLA}/2025-10")
        async with page.expect_download() as info:
            await page.click("a[download]")
        download = await info.value
        assert download.suggested_filename == f"claim-{SLA}-2025-10.txt"
        saved = await download.path()
        text = await asyncio.to_thread(Path(saved).read_text, encoding="utf-8")
        assert "2025-10-15 18:00 BST to 18:30 BST" in text
        status, served = daemon.get(f"/api/v1/report?service={SLA}&month=2025-10&format=claim")
        assert status == 200
        assert text == served


class TestEveryPage:
    @pytest.mark.parametrize(
        ("name", "path", "heading"),
        [
            ("overview", "/?month=2025-10", "SLA overview · 2025-10"),
            ("sla-month", f"/sla/{SLA}/2025-10", f"{SLA} · 2025-10"),
            ("sla-month-march", f"/sla/{SLA}/2025-03", f"{SLA} · 2025-03"),
            ("support", "/support/uma?month=2025-10", "Support contract uma"),
            ("target", "/target/sbc-a", "Target sbc-a"),
        ],
    )
    async def test_page_loads_cleanly_and_is_accessible(
        self, page: Any, daemon: DaemonProcess, shots: Path, name: str, path: str, heading: str
    ) -> None:
        """No console error, the heading, a screenshot, and no serious or critical axe-core
        violation."""
        await visit(page, daemon, path)
        assert (await page.locator("h1").first.inner_text()) == heading
        await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        assert page.problems == []
        assert await serious_violations(page) == []

    async def test_overview_figures_match_the_report(
        self, page: Any, daemon: DaemonProcess
    ) -> None:
        """The overview's month figures are the report's (one computation for both)."""
        status, body = daemon.get(f"/api/v1/report?service={SLA}&month=2025-10&format=json")
        assert status == 200
        report = json.loads(body)["reports"][0]
        await visit(page, daemon, "/?month=2025-10")
        row = await page.locator(f"tr[data-sla='{SLA}']").inner_text()
        assert f"{report['uptime_percent']:.6f}%" in row
        assert f"{float(report['credit_amount']):,.2f} GBP" in row
        support = await page.locator("a[href='/support/uma']").locator("xpath=../..").inner_text()
        assert "2025-10" in support

    async def test_unknown_names_are_404_pages(self, page: Any, daemon: DaemonProcess) -> None:
        """Unknown SLA, contract or target: a 404 page naming the known ones."""
        for path, known in (
            ("/sla/nope/2025-10", SLA),
            ("/support/nope", "uma"),
            ("/target/nope", "sbc-a"),
        ):
            reply = await page.goto(daemon.base + path)
            assert reply is not None
            assert reply.status == 404
            assert known in await page.locator("main").inner_text()
        reply = await page.goto(daemon.base + f"/sla/{SLA}/2025-13")
        assert reply is not None
        assert reply.status == 400
