"""Secrets never reach results, reports or logs: a password in a URI DSN and a credential in a hook
URL are refused when the plan loads; scrub masks secrets by their shape; a hook's failure says
nothing of its token; results.json and the CAB log mask what reaches them anyway."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from controlplane import redact
from harness.cab.ledger import load_key
from harness.errors import PlanError
from harness.lab import hooks
from harness.lab.hooks import Hook, HookError
from harness.model import DrillResult
from harness.plan import load_plan
from harness.report.record import Recording, write_outputs
from harness.signoff import SignOff
from tests.support import JsonHandler, http_server

ROOT = Path(__file__).resolve().parents[2]
BEARER = "b3arer-T0ken-planted-4242"
DSN_PASSWORD = "dsn-pw-planted-4242"
HOOK_SECRET = "hook-cred-planted-4242"
PLANTED = (BEARER, DSN_PASSWORD, HOOK_SECRET)


def external_plan(tmp_path: Path, dsn: str = "host=a dbname=x", url: str = "http://runbook/kill") -> Path:
    lab = {
        "provider": "external",
        "api_url": "http://api",
        "toxiproxy_url": "http://toxi",
        "database": {"failover_target": "b", "nodes": {"a": {"dsn": dsn}, "b": {"dsn": "host=b"}}},
        "actions": {"kill_database_primary": {"http": {"url": url, "token_env": "RUNBOOK_TOKEN"}}},
    }
    path = tmp_path / "plan.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "drill": "staging",
                "title": "t",
                "ha_domain": "database",
                "lab": lab,
                "environment": {"class": "staging", "name": "staging"},
                "scenarios": ["scenarios/database/primary_failover.feature"],
            }
        )
    )
    return path


def test_an_external_plan_without_secrets_loads(tmp_path):
    plan = load_plan(external_plan(tmp_path, dsn="postgresql://app@a:5432/x"), ROOT)
    assert plan.lab.external.nodes["a"].dsn == "postgresql://app@a:5432/x"


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://app:{DSN_PASSWORD}@a/x",
        f"postgres://app:{DSN_PASSWORD}@a:5432/x",
        f"POSTGRESQL://app:{DSN_PASSWORD}@a,b/x?sslmode=require",
        f"postgresql://a/x?password={DSN_PASSWORD}",
        f"host=a password = {DSN_PASSWORD}",
        # as libpq reads them (psycopg's own parser): a tab, a percent-encoded name
        f"host=a password\t={DSN_PASSWORD}",
        f"postgresql://a/x?%70assword={DSN_PASSWORD}",
        f"host=a PASSWORD_x=1 password\n={DSN_PASSWORD}",
        f"host=a sslpassword={DSN_PASSWORD}",
        # libpq cannot read it: refused without the text (its error would echo it)
        f"postgresql://[::1/x?password={DSN_PASSWORD}",
        f"host=a password='{DSN_PASSWORD}",
    ],
)
def test_a_password_in_a_dsn_is_refused_at_load_naming_the_key(tmp_path, dsn):
    with pytest.raises(PlanError) as err:
        load_plan(external_plan(tmp_path, dsn=dsn), ROOT)
    message = str(err.value)
    assert "key 'lab.database.nodes.a.dsn'" in message and "password_env" in message
    assert DSN_PASSWORD not in message


@pytest.mark.parametrize(
    "url",
    [
        f"https://ops:{HOOK_SECRET}@runbook.example/kill",
        f"https://{HOOK_SECRET}@runbook.example/kill",
        f"https://runbook.example/kill?token={HOOK_SECRET}",
        f"https://runbook.example/kill?x=1&api_key={HOOK_SECRET}",
    ],
)
def test_a_credential_in_a_hook_url_is_refused_at_load_naming_the_key(tmp_path, url):
    with pytest.raises(PlanError) as err:
        load_plan(external_plan(tmp_path, url=url), ROOT)
    message = str(err.value)
    assert "key 'lab.actions.kill_database_primary.http.url'" in message and "token_env" in message
    assert HOOK_SECRET not in message


def test_a_hook_built_with_a_credential_in_its_url_never_shows_it():
    hook = Hook("kill", url=f"https://ops:{HOOK_SECRET}@127.0.0.1:9/kill?token={HOOK_SECRET}&x=1", timeout_s=2)
    assert HOOK_SECRET not in hook.describe() and "127.0.0.1:9/kill" in hook.describe()
    with pytest.raises(HookError) as err:
        hook.run()
    assert HOOK_SECRET not in str(err.value) and "127.0.0.1" in str(err.value)


TEXTS = [
    (f"Authorization: Bearer {BEARER}", "Authorization: Bearer ***"),
    (f'{{"headers": {{"Authorization": "Bearer {BEARER}"}}}}', '{"headers": {"Authorization": "Bearer ***"}}'),
    (f"authorization={BEARER}", "authorization=***"),
    (f"sent bearer {BEARER} to the API", "sent bearer *** to the API"),
    (f"Proxy-Authorization: Basic {BEARER}", "Proxy-Authorization: Basic ***"),
    (f"connect postgresql://app:{DSN_PASSWORD}@db:5432/x failed", "connect postgresql://app:***@db:5432/x failed"),
    (f"postgres://app:{DSN_PASSWORD}@db/x", "postgres://app:***@db/x"),
    (f"POST https://ops:{HOOK_SECRET}@runbook/kill", "POST https://ops:***@runbook/kill"),
    (f"host=db password={DSN_PASSWORD} user=app", "host=db password=*** user=app"),
    (f'{{"password": "{DSN_PASSWORD}"}}', '{"password": "***"}'),
    (f"GET /kill?token={HOOK_SECRET}&x=1", "GET /kill?token=***&x=1"),
    (f"GET /kill?apikey={HOOK_SECRET}", "GET /kill?apikey=***"),
    (f"GET /kill?access_token={HOOK_SECRET}", "GET /kill?access_token=***"),
    (f"api_key: {HOOK_SECRET}", "api_key: ***"),
    # what must stay readable
    ("a password must not be written in the plan: name it with password_env", None),
    ("basic checks passed; bearer tokens are refused; a basic configuration", None),
    ("postgresql://app@db:5432/x", None),
    ("password authentication failed for user app", None),
    ("hook kill: environment variable RUNBOOK_TOKEN is not set", None),
]


@pytest.mark.parametrize("scrub", [hooks.scrub, redact.scrub], ids=["harness", "controlplane"])
@pytest.mark.parametrize("text, expected", TEXTS, ids=[t[:40] for t, _ in TEXTS])
def test_scrub_masks_secrets_by_their_shape(scrub, text, expected):
    assert scrub(text) == (text if expected is None else expected)
    assert scrub(scrub(text)) == scrub(text)


class Echo(JsonHandler):
    """A runbook endpoint that fails and echoes what it was sent: its headers and its URL."""

    def do_POST(self):
        self.send_json(500, f"denied: {self.requestline}\n{self.headers}".encode())


@pytest.fixture
def echo_server():
    with http_server(Echo) as url:
        yield url


class Recorder(JsonHandler):
    """A runbook endpoint that answers {} and keeps the Authorization header of each call."""

    seen: list = []

    def do_POST(self):
        Recorder.seen.append(self.headers.get("Authorization"))
        self.send_json(200, {})


@pytest.fixture
def recording_server():
    Recorder.seen = []
    with http_server(Recorder) as url:
        yield url


def test_a_hook_sends_the_token_of_its_token_file_read_at_each_call(recording_server, tmp_path):
    """token_file, which clock and evidence_gateway take and docs/providers.md promises for hooks,
    used to be dropped by Hook.parse: the hook was called without a token."""
    token = tmp_path / "ops-token"
    token.write_text(BEARER + "\n")
    fail = lambda key, message: PlanError(f"key '{key}': {message}")  # noqa: E731
    hook = Hook.parse(
        "kill", {"http": {"url": f"{recording_server}/kill", "token_file": str(token)}, "timeout_s": 10}, fail
    )
    assert hook.run(node="pg-a") == {}
    token.write_text("r0tated-T0ken-4242")  # a rotated secret is read again
    hook.run(node="pg-a")
    assert Recorder.seen == [f"Bearer {BEARER}", "Bearer r0tated-T0ken-4242"]
    assert BEARER not in hook.describe() and str(token) not in hook.describe()


@pytest.mark.parametrize("content", [None, "", "two\nlines", "fifo"], ids=["missing", "empty", "two lines", "a FIFO"])
def test_a_token_file_that_cannot_be_used_is_a_hook_error_without_the_token(recording_server, tmp_path, content):
    token = tmp_path / "ops-token"
    if content == "fifo":
        os.mkfifo(token)  # refused at once, not waited on
    elif content is not None:
        token.write_text(content.replace("two", BEARER))
    hook = Hook("kill", url=f"{recording_server}/kill", token_file=str(token), timeout_s=10)
    with pytest.raises(HookError) as err:
        hook.run()
    assert str(err.value).startswith(f"hook kill: token_file {token}") and BEARER not in str(err.value)
    assert Recorder.seen == []  # never called without the token it was given


def test_a_failing_hook_says_how_without_its_bearer_token(echo_server, monkeypatch):
    monkeypatch.setenv("RUNBOOK_TOKEN", BEARER)
    hook = Hook("kill", url=f"{echo_server}/kill?token={HOOK_SECRET}", token_env="RUNBOOK_TOKEN", timeout_s=10)
    with pytest.raises(HookError) as err:
        hook.run(target="pg-a")
    assert "answered 500" in str(err.value) and "Authorization" in str(err.value)
    assert BEARER not in str(err.value) and HOOK_SECRET not in str(err.value)


def result_with(texts: list[str]) -> DrillResult:
    return DrillResult.from_json(
        {
            "drill": "quarterly-database",
            "title": "t",
            "ha_domain": "database",
            "verdict": "fail",
            "finished_at": "2026-04-01T06:00:00+00:00",
            "targets": {"rto_seconds": 60.0},
            "environment": {
                "provider": "external",
                "hook": texts[0],
                "db_password": DSN_PASSWORD,
                "token_env": "RUNBOOK_TOKEN",
            },
            "scenarios": [
                {
                    "name": "crash",
                    "feature": "database/primary_failover.feature",
                    "verdict": "fail",
                    "error": texts[1],
                    "observations": texts,
                    "measurements": {"rto_seconds": 1.0},
                    "gates": [
                        {
                            "id": "rto_seconds",
                            "description": "RTO",
                            "verdict": "fail",
                            "measured": 1.0,
                            "threshold": "<= 60 s",
                            "detail": texts[2],
                        }
                    ],
                }
            ],
        }
    )


def record(result: DrillResult, tmp_path: Path) -> tuple[Path, Recording]:
    key_path = tmp_path / "cab.key"
    key_path.write_text(os.urandom(32).hex())
    plan = load_plan(ROOT / "drills" / "quarterly-database.yaml", root=ROOT)
    rec = Recording(tmp_path / "cab.jsonl", key=load_key(key_path), signoff=SignOff(operator="ops"))
    out = tmp_path / "out"
    write_outputs(result, plan, out, rec, log=lambda *a, **k: None)
    return out, rec


def test_results_json_and_the_cab_log_mask_a_planted_secret(tmp_path):
    """Defence in depth: whatever reaches a result, its machine records mask secrets by shape."""
    out, rec = record(
        result_with(
            [
                f"POST https://ops:{HOOK_SECRET}@runbook/kill",
                f"hook kill answered 500: Authorization: Bearer {BEARER}",
                f"could not connect to postgresql://app:{DSN_PASSWORD}@db/x",
            ]
        ),
        tmp_path,
    )
    results = (out / "results.json").read_text()
    data = json.loads(results)
    assert data["environment"]["token_env"] == "RUNBOOK_TOKEN"  # where a secret is kept is not one
    for text in (results, rec.cab_log.read_text()):
        assert not [s for s in PLANTED if s in text]
    assert "Bearer ***" in results and "postgresql://app:***@db/x" in results


def test_a_hook_failure_in_a_result_reaches_no_output(echo_server, tmp_path, monkeypatch):
    """The path a secret would take: a failing hook's message in the scenario's error, a gate's
    detail and the environment; every output (results.json, junit.xml, report.html, the CAB log)
    is free of the bearer token and the hook URL's credential."""
    monkeypatch.setenv("RUNBOOK_TOKEN", BEARER)
    hook = Hook("kill", url=f"https://ops:{HOOK_SECRET}@runbook.invalid/kill", token_env="RUNBOOK_TOKEN")
    echo = Hook("kill", url=f"{echo_server}/kill?token={HOOK_SECRET}", token_env="RUNBOOK_TOKEN", timeout_s=10)
    with pytest.raises(HookError) as err:
        echo.run()
    out, rec = record(result_with([hook.describe(), str(err.value), str(err.value)]), tmp_path)
    texts = {p.name: p.read_text() for p in out.iterdir()} | {"cab": rec.cab_log.read_text()}
    assert {"results.json", "junit.xml", "report.html"} <= set(texts)
    ET.fromstring(texts["junit.xml"])
    for name, text in texts.items():
        assert not [s for s in PLANTED if s in text], name


# ---- bad text in a result: lone surrogates (from undecodable bytes) ------------------------------


def test_lone_surrogates_in_a_result_are_written_as_replacement_characters(tmp_path):
    """A lone surrogate in any result string used to make the first writer raise, so nothing was
    written; now every output and the CAB line are written, valid UTF-8 and parseable, with
    U+FFFD where the surrogate was (a valid surrogate pair becomes its character)."""
    from harness.cab.ledger import verify_cab_log

    bad = "half \ud800 a pair \ud83d\ude00 end \udfff"
    result = result_with([bad, "error " + bad, "detail " + bad])
    result.title = "title " + bad
    result.scenarios[0].name = "scenario \udc80"
    result.environment["key \ud800"] = bad
    out, rec = record(result, tmp_path)
    raw = {p.name: p.read_bytes() for p in out.iterdir()} | {"cab": rec.cab_log.read_bytes()}
    assert {"results.json", "junit.xml", "report.html", "manifest.json"} <= set(raw)
    texts = {name: data.decode("utf-8") for name, data in raw.items() if name != "plan.yaml"}  # strict
    results = json.loads(texts["results.json"])
    assert results["title"] == "title half \ufffd a pair \U0001f600 end \ufffd"
    assert results["scenarios"][0]["name"] == "scenario \ufffd"
    assert "\ufffd" in ET.fromstring(raw["junit.xml"]).find(".//failure").text
    assert "\ufffd" in texts["report.html"]
    entry = json.loads(texts["cab"])
    assert entry["drill"] == "quarterly-database" and verify_cab_log(rec.cab_log, rec.key)[0] is True


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", ["fifo", "missing"])
def test_a_password_or_token_file_that_is_not_a_file_fails_at_once_naming_it(tmp_path, kind):
    """password_file, and the token_file of clock and evidence_gateway, were read with
    read_text(): a FIFO there blocked the run forever."""
    from harness.errors import LabStartError
    from harness.lab.external import NodeConfig, Secret

    path = tmp_path / "secret"
    if kind == "fifo":
        os.mkfifo(path)
    for read in (
        lambda: NodeConfig("pg-a", "host=pg-a", password_file=str(path)).password(),
        lambda: Secret(file=str(path)).value("lab.clock"),
    ):
        with pytest.raises(LabStartError) as err:
            read()
        assert str(path) in str(err.value) and "cannot read" in str(err.value)
