"""The drill report in a real headless Chromium: what it fetches, how it lays out on a desktop and a
phone, its PDF and a screenshot. One browser for the module; skipped, with the reason, without one."""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import pytest

from harness.report.browser import Browser, BrowserUnavailable, available, print_pdf
from harness.report.html import write_html
from tests.support import wait_for
from tests.unit.test_report import R, make_results

TITLE = "Quarterly database failover drill"
PHONE = 390


def long_results(scenarios: int = 6) -> dict:
    """A drill of several scenarios, one failed, with faults, observations and drill-level gates."""
    results = make_results()
    results["verdict"] = "fail"
    results["scenarios"] = []
    for i in range(scenarios):
        failed = i == 2
        name = f"scenario-{i + 1}-{'db-primary-kill' if i % 2 == 0 else 'network-partition-of-the-api'}"
        s = copy.deepcopy(
            make_results(name=name, rto_verdict="fail" if failed else "pass", rto=45.0 if failed else 3.2 + i)[
                "scenarios"
            ][0]
        )
        s.update(
            feature=f"drills/features/database.feature:{10 * i + 3}",
            tags=["database", "destructive"],
            description="Given a steady state with writes every 100 ms\nWhen the primary is killed\n"
            "Then a replica is promoted within the RTO",
            matrix_row={"number": i + 1, "component": "PostgreSQL primary", "failure": "process killed"},
            observations=["replica promoted after 2.9 s", "the API answered 503 for 3 s, then recovered"],
            faults=[
                {
                    "label": f"kill-primary-{i}",
                    "type": "process_kill",
                    "target": "db-1",
                    "description": "SIGKILL the PostgreSQL primary",
                    "injected_s": 4.0,
                    "healed_s": 10.0,
                    "time_limit_s": 120,
                }
            ],
            lost_write_keys=[f"intent-{i}-{k}" for k in range(3)] if failed else [],
        )
        results["scenarios"].append(s)
    results["gates"] = [
        {
            "id": "all_scenarios_ran",
            "description": "Every planned scenario ran",
            "measured": scenarios,
            "threshold": f"== {scenarios}",
            "verdict": "pass",
        }
    ]
    return results


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return write_html(R(long_results()), tmp_path_factory.mktemp("report"))


def _live_members(group: int) -> list[int]:
    """Processes of process group `group` that are not zombies, read from /proc."""
    live = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
            if int(pgrp) == group and state not in ("Z", "X"):
                live.append(int(entry.name))
    return live


def _chromium_temp_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("org.chromium.*")}


@pytest.fixture(scope="module")
def browser():
    reason = available()
    if reason:
        pytest.skip(f"headless Chromium unavailable: {reason}")
    before = _chromium_temp_dirs()
    try:
        started = Browser().start()
    except BrowserUnavailable as exc:
        pytest.skip(f"headless Chromium unavailable: {exc.reason}")
    group, tempdir = started.process.pid, started.tempdir
    yield started
    started.close()
    # closing kills the browser's whole process group and removes its profile and its temp files
    assert not tempdir.exists()
    assert _chromium_temp_dirs() <= before, "Chromium left its singleton dir in the system temp dir"
    wait_for(lambda: _live_members(group) == [], timeout=5, what="every member of the browser's group gone")


def test_a_missing_chromium_is_named_with_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("DRILL_CHROMIUM", str(tmp_path / "no-such-chromium"))
    reason = available()
    assert "DRILL_CHROMIUM" in reason and "apt-get install chromium" in reason
    with pytest.raises(BrowserUnavailable, match="apt-get install chromium"):
        Browser().start()
    assert list(tmp_path.iterdir()) == []


def test_the_report_fetches_only_itself_and_draws_its_charts(browser, report):
    with browser.open(report, width=1280) as page:
        assert page.requests[0] == report.resolve().as_uri()
        assert [u for u in page.requests if u != page.url and not u.startswith("data:")] == []
        svgs = page.boxes("svg")
        assert len(svgs) == 6
        assert all(box["width"] > 100 and box["height"] > 20 for box in svgs), svgs
        banner = page.evaluate("document.querySelector('.banner').innerText")
        assert "Verdict: FAIL" in banner and "at least one gate failed" in banner


VERDICT_COLUMNS = """
Array.from(document.querySelectorAll('table'))
  .filter(t => Array.from(t.querySelectorAll('th')).some(th => th.textContent.trim() === 'Verdict'))
  .map(t => {
    const heads = Array.from(t.rows[0].cells).map(c => c.textContent.trim());
    const verdict = heads.indexOf('Verdict');
    return Array.from(t.rows).map(r => {
      const last = r.cells[r.cells.length - 1].getBoundingClientRect();
      const v = r.cells[verdict].getBoundingClientRect();
      return {last_right: last.right, last_width: last.width, verdict_right: v.right,
              verdict_width: v.width, text: r.cells[verdict].innerText.trim()};
    });
  })
"""


def test_on_a_phone_the_verdict_column_stays_on_screen(browser, report):
    with browser.open(report, width=PHONE, height=844, mobile=True) as page:
        tables = page.evaluate(VERDICT_COLUMNS)
        assert len(tables) == 1 + 1 + 6  # gates not passed, drill gates, one per scenario
        for rows in tables:
            for row in rows:
                assert row["last_width"] > 0 and 0 < row["last_right"] <= PHONE, row
                assert row["verdict_width"] > 0 and row["verdict_right"] <= PHONE, row
        verdicts = {row["text"] for rows in tables for row in rows[1:]}
        assert verdicts == {"PASS", "FAIL", "UNKNOWN"}
        assert page.evaluate("window.innerWidth") == PHONE  # nothing widened the layout either


def test_a_page_that_fetches_something_shows_it_but_reaches_nothing(browser, tmp_path):
    page_path = tmp_path / "fetches.html"
    page_path.write_text('<!DOCTYPE html><title>fetches</title><img src="http://example.com/x.png">')
    with browser.open(page_path) as page:
        assert "http://example.com/x.png" in page.requests
        # the request went nowhere: no resolver, no proxy
        assert page.evaluate("document.images[0].complete && document.images[0].naturalWidth") == 0


def test_the_report_prints_to_a_pdf_with_a_header_and_page_numbers(browser, report, tmp_path):
    pypdf = pytest.importorskip("pypdf", reason="pypdf is missing: pip install -e '.[test]'")
    began = time.monotonic()
    pdf = print_pdf(report, tmp_path / "report.pdf", TITLE + " <&>", browser=browser)
    took = time.monotonic() - began
    assert pdf == tmp_path / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]  # no temp file left behind
    reader = pypdf.PdfReader(pdf)
    pages = len(reader.pages)
    assert pages > 1
    first = reader.pages[0].extract_text()
    assert f"Page 1 of {pages}" in first
    assert TITLE + " <&>" in first  # escaped in the header template, shown as typed
    last = reader.pages[-1].extract_text()
    assert f"Page {pages} of {pages}" in last and TITLE in last
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4 in points
    assert took < 20


def test_a_screenshot_of_the_whole_report(browser, report, tmp_path):
    with browser.open(report) as page:
        shot = page.screenshot(tmp_path / "report.png")
        height = page.evaluate("document.documentElement.scrollHeight")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    width, tall = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, tall) == (1280, height)  # the whole page, not only the 900 px viewport


def test_the_trend_page_fetches_nothing_and_its_charts_have_size(browser, tmp_path):
    from harness.report.history import history, render_history
    from tests.unit.test_history import ENTRIES, NOW

    page_path = tmp_path / "history.html"
    page_path.write_text(render_history(history(ENTRIES, skipped=1, now=NOW)))
    with browser.open(page_path, width=1280) as page:
        assert [u for u in page.requests if u != page.url and not u.startswith("data:")] == []
        charts = page.boxes("svg.chart")
        assert len(charts) == 6 and all(box["width"] > 300 and box["height"] > 80 for box in charts), charts
        marks = page.boxes("svg.chart circle")
        assert marks and all(box["width"] > 2 for box in marks)  # the RTO marks are drawn


# ---- a lab run is a rehearsal: page 1 and every PDF page say so, in red ----------------------------

RED = "rgb(207, 34, 46)"  # #cf222e
PDF_RED = b".8118 .1333 .1804 rg"  # the same red as a PDF fill colour


def run_result(cls: str):
    from harness.model import DrillResult

    return DrillResult.from_json(
        {
            "drill": "quarterly-database",
            "title": TITLE,
            "verdict": "pass",
            "correlation_id": "cid-1",
            "environment": {
                "provider": "embedded" if cls == "lab" else "external",
                "class": cls,
                "name": "embedded lab" if cls == "lab" else "staging-eu",
            },
        }
    )


def test_a_lab_runs_page_one_opens_with_a_red_rehearsal_banner(browser, tmp_path):
    from harness.environments import REHEARSAL

    report = write_html(run_result("lab"), tmp_path)
    with browser.open(report, width=1280) as page:
        found = page.evaluate("""(() => {
            const r = document.querySelector('.rehearsal'), v = document.querySelector('.banner');
            const summary = Array.from(document.querySelectorAll('h2')).find(h => h.textContent === 'Summary');
            return {text: r.innerText, background: getComputedStyle(r).backgroundColor,
                    top: r.getBoundingClientRect().top, verdict_top: v.getBoundingClientRect().top,
                    summary_top: summary.getBoundingClientRect().top, height: r.getBoundingClientRect().height};
        })()""")
    assert found["text"].startswith(REHEARSAL) and found["background"] == RED
    assert found["top"] < found["verdict_top"] < found["summary_top"] and found["height"] > 30
    staging = write_html(run_result("staging"), tmp_path / "staging")
    with browser.open(staging) as page:
        assert page.evaluate("document.querySelector('.rehearsal')") is None


def test_a_lab_runs_pdf_carries_the_rehearsal_line_in_red_atop_every_page(browser, tmp_path):
    pypdf = pytest.importorskip("pypdf", reason="pypdf is missing: pip install -e '.[test]'")
    from harness.environments import REHEARSAL
    from harness.report.record import make_pdf

    lab = run_result("lab")
    pdf = make_pdf(write_html(lab, tmp_path / "lab"), lab, browser=browser)
    pages = pypdf.PdfReader(pdf).pages
    assert len(pages) >= 2
    for page in pages:
        text = " ".join(page.extract_text().split())
        assert REHEARSAL in text and f"{TITLE}: PASS (cid-1)" in text
    # page 2 has no banner of its own: its red is the header's line
    assert PDF_RED in pages[-1].get_contents().get_data()

    staging = run_result("staging")
    pdf = make_pdf(write_html(staging, tmp_path / "staging"), staging, browser=browser)
    last = pypdf.PdfReader(pdf).pages[-1]
    assert "REHEARSAL" not in last.extract_text() and PDF_RED not in last.get_contents().get_data()
