"""Malformed plans: `drill run` and `drill chaos` say what is wrong in one line naming the file,
the key and the fix, and exit 2 before anything starts; never a traceback (exit 70)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.chaos.plan import load_chaos_plan
from harness.cli import main
from harness.errors import PlanError
from harness.plan import load_plan
from harness.schedule.daemon import load_plans
from tests.unit.test_plan import GOOD

ROOT = Path(__file__).resolve().parents[2]
DRILL = [sys.executable, "-m", "harness.cli"]
CHAOS = """\
chaos: db-latency
title: latency
lab: running
blast_radius: [db]
faults:
  - {type: latency, target: db, params: {latency_ms: 200}, duration: 5s}
"""
GAME_DAY = (
    "game_day: {gap: %s, faults: {tiny: {type: latency, targets: [db], params: {latency_ms: 1}, duration: %s}}}\n"
)
NODES = "nodes: {a: {dsn: host=a}, b: {dsn: host=b}}"
EXTERNAL = (
    "lab: {provider: external, api_url: 'http://api', toxiproxy_url: 'http://toxi', "
    "database: {failover_target: %s, " + NODES + "}}"
)


def external(extra: str) -> str:
    """EXTERNAL (failover target a) with `extra` keys of the lab."""
    return (EXTERNAL % "a").replace("provider: external,", f"provider: external, {extra},")


BOMB = "".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n']
    + [
        f"{n}: &{n} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        for p, n in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)


def replace(key: str, line: str, base: str = GOOD) -> str:
    """`base` with the line of `key` replaced (or `line` added when the key is not there)."""
    lines = [x for x in base.splitlines() if not x.startswith(f"{key}:")]
    return "\n".join(lines + [line]) + "\n"


# (name, plan bytes, a word the message must hold: the key or what is wrong)
BAD_PLANS = [
    ("latin-1", replace("title", "title: Caf\xe9 drill").encode("latin-1"), "UTF-8"),
    ("utf-16", GOOD.encode("utf-16"), "UTF-16"),
    (
        "400-digit target",
        replace("targets", "targets: {rto_seconds: " + "9" * 400 + "}").encode(),
        "targets.rto_seconds",
    ),
    (
        "5000-digit target",
        replace("targets", "targets: {rto_seconds: " + "9" * 5000 + "}").encode(),
        "targets.rto_seconds",
    ),
    ("5000-digit tier", replace("tier", "tier: " + "1" * 5000).encode(), "tier"),
    ("nested brackets", replace("title", "title: " + "[" * 20000).encode(), "nesting"),
    ("nested brackets closed", replace("targets", "targets: " + "[" * 20000 + "]" * 20000).encode(), "nesting"),
    ("mixed target keys", replace("targets", "targets: {1: 2, rto_seconds: 3}").encode(), "targets.1"),
    ("an int top-level key", (GOOD + "1: x\n").encode(), "key '1'"),
    ("int and str unknown keys", (GOOD + "1: x\ncolour: blue\n").encode(), "key '1'"),
    ("drill a list", replace("drill", "drill: [a, b]").encode(), "drill"),
    ("title a list", replace("title", "title: [x]").encode(), "title"),
    ("ha_domain a list", replace("ha_domain", "ha_domain: [database]").encode(), "ha_domain"),
    ("lab a list", replace("lab", "lab: [embedded]").encode(), "lab"),
    ("provider a list", replace("lab", "lab: {provider: [embedded]}").encode(), "lab.provider"),
    ("replication a list", replace("lab", "lab: {replication: [sync]}").encode(), "lab.replication"),
    (
        "image part a list",
        replace("lab", "lab: {provider: testcontainers, images: {postgres: [x]}}").encode(),
        "lab.images.postgres",
    ),
    ("scenario a mapping", replace("scenarios", "scenarios: [{a: b}]").encode(), "scenarios[0]"),
    ("failover target a list", replace("lab", EXTERNAL % "[a]").encode(), "lab.database.failover_target"),
    ("external mixed keys", replace("lab", EXTERNAL.replace("provider:", "1: x, provider:") % "a").encode(), "lab.1"),
    ("owner a mapping", (GOOD + "owner: {a: b}\n").encode(), "owner"),
    ("owner a long list", (GOOD + "owner: [" + ",".join(["abcdef"] * 5000) + "]\n").encode(), "owner"),
    (
        "window start a long list",
        (GOOD + "window: {start: [" + ",".join(["1"] * 5000) + "], end: 2026-01-01T00:00:00Z}\n").encode(),
        "window.start",
    ),
    ("schedule a list", (GOOD + "schedule: [a]\n").encode(), "schedule"),
    ("alias bomb", (GOOD + BOMB).encode(), "alias"),
    ("alias bomb as a value", replace("title", "title: *i", GOOD + BOMB.replace("\n", "\n")).encode(), "alias"),
    ("self-referencing alias", replace("targets", "targets: &t {rto_seconds: *t}").encode(), "alias"),
    ("bad tag expression", replace("scenarios", 'scenarios: "@quarterly and ("').encode(), "scenarios"),
    ("drill id with a newline", replace("drill", 'drill: "quarterly-database\\n"').encode(), "drill"),
    ("nan target", replace("targets", "targets: {rto_seconds: .nan}").encode(), "targets.rto_seconds"),
    ("inf target", replace("targets", "targets: {rpo_seconds: .inf}").encode(), "targets.rpo_seconds"),
    ("-inf target", replace("targets", "targets: {lost_writes: -.inf}").encode(), "targets.lost_writes"),
    ("nan availability", replace("targets", "targets: {availability: .nan}").encode(), "targets.availability"),
    ("tier true", (GOOD + "tier: true\n").encode(), "tier"),
    ("tier 1.0", (GOOD + "tier: 1.0\n").encode(), "tier"),
    ("a bad date", (GOOD + "blackout: [{start: 2026-13-45, end: 2027-01-01, reason: x}]\n").encode(), "2026-13-45"),
    ("a NUL in the text", GOOD.replace("Database", "Data\0base").encode(), "YAML"),
    ("not a mapping", b"- a\n- b\n", "mapping"),
    ("a complex key", (GOOD + "? [a]\n: b\n").encode(), "YAML"),
    # values a parser crashed on (exit 70): refused in one line, exit 2
    (
        "window start before year 1 in UTC",
        (GOOD + "window: {start: '0001-01-01T00:00+23:59', end: '2026-01-01T00:00:00Z'}\n").encode(),
        "window.start",
    ),
    (
        "window end after 9999 in UTC",
        (GOOD + "window: {start: 2026-01-01T00:00:00Z, end: '9999-12-31T23:59-23:59'}\n").encode(),
        "window.end",
    ),
    (
        "tag expression in 500 parentheses",
        replace("scenarios", "scenarios: '" + "(" * 500 + "@quarterly" + ")" * 500 + "'").encode(),
        "scenarios",
    ),
    (
        "tag expression of 5000 nots",
        replace("scenarios", "scenarios: '" + "not " * 5000 + "@quarterly'").encode(),
        "scenarios",
    ),
    (
        "external api_url with an open bracket",
        replace("lab", EXTERNAL.replace("'http://api'", "'http://[::1'") % "a").encode(),
        "lab.api_url",
    ),
    (
        "400-digit hook timeout",
        replace(
            "lab", external("actions: {kill_database_primary: {command: [/bin/true], timeout_s: " + "9" * 400 + "}}")
        ).encode(),
        "lab.actions.kill_database_primary.timeout_s",
    ),
    (
        "nan hook timeout",
        replace("lab", external("reads: {platform_requests: {command: [/bin/true], timeout_s: .nan}}")).encode(),
        "lab.reads.platform_requests.timeout_s",
    ),
    ("an empty blast radius name", replace("lab", external("blast_radius: ['']")).encode(), "lab.blast_radius"),
    # what the plan quotes is escaped; what a sign-off holds must be readable as written
    ("an escape in a key", (GOOD + '"colour\\e]0;owned\\a": blue\n').encode(), "colour\\x1b]0;owned\\x07"),
    (
        "an escape in the owner",
        (GOOD + 'owner: "Platform\\e[8m SRE"\n').encode(),
        "key 'owner': has the character \\x1b",
    ),
    (
        "a bidi override in the approver",
        (GOOD + 'approver: "J. Doe \\u202e(BAC)"\n').encode(),
        "key 'approver': has the character \\u202e",
    ),
    (
        "a NEL in the change ticket",
        (GOOD + 'change_ticket: "CHG\\N1"\n').encode(),
        "key 'change_ticket': has the character \\x85",
    ),
]


def one_line(stderr: str, prefix: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), stderr[:2000]
    return lines[0]


def drill_in_process(args: list[str], capsys) -> tuple[int, str]:
    """`drill ARGS` through main() in this process (a subprocess each costs 0.8 s of start-up; the
    first case of each command below runs as a real process too)."""
    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name, source, word", BAD_PLANS, ids=[c[0] for c in BAD_PLANS])
def test_drill_run_refuses_a_malformed_plan_in_one_line(tmp_path, capsys, monkeypatch, name, source, word):
    monkeypatch.chdir(ROOT)
    plan = tmp_path / "plan.yaml"
    plan.write_bytes(source)
    args = ["run", str(plan), "--out", str(tmp_path / "out"), "--cab-log", str(tmp_path / "cab.jsonl")]
    if name == BAD_PLANS[0][0]:
        done = subprocess.run([*DRILL, *args], capture_output=True, text=True, cwd=ROOT, timeout=120, errors="replace")
        code, stderr = done.returncode, done.stderr
    else:
        code, stderr = drill_in_process(args, capsys)
    assert code == 2, stderr[-3000:]
    line = one_line(stderr, f"drill: invalid plan: {plan}:")
    assert word in line and len(line) < 600
    assert not (tmp_path / "out").exists() and not (tmp_path / "cab.jsonl").exists()


@pytest.mark.parametrize(
    "path",
    ["plan\0.yaml", "x" * 5000, "d/" * 2500 + "p.yaml"],
    ids=["NUL", "5000 characters", "5000 characters of folders"],
)
def test_drill_run_refuses_a_path_that_cannot_be_opened(tmp_path, capsys, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    code = main(["run", path, "--out", str(tmp_path / "out"), "--cab-log", str(tmp_path / "cab.jsonl")])
    line = one_line(capsys.readouterr().err, "drill: invalid plan: ")
    assert code == 2 and "cannot read" in line and len(line) < 400
    assert not (tmp_path / "out").exists()


def test_a_path_too_long_is_shown_shortened_but_named():
    with pytest.raises(PlanError) as err:
        load_plan("y" * 5000)
    assert str(err.value).startswith("yyyy") and "..." in str(err.value) and len(str(err.value)) < 400


@pytest.mark.parametrize(
    "name, source, word",
    [
        ("latin-1", (CHAOS + "description: caf\xe9\n").encode("latin-1"), "UTF-8"),
        ("utf-16", CHAOS.encode("utf-16"), "UTF-16"),
        ("nested brackets", (CHAOS + "description: " + "[" * 20000 + "\n").encode(), "nesting"),
        ("alias bomb", (CHAOS + BOMB).encode(), "alias"),
        ("mixed keys", (CHAOS + "stop_conditions: {1: 2, probe_failing_s: 3}\n").encode(), "stop_conditions.1"),
        ("an int top-level key", (CHAOS + "1: x\n").encode(), "key '1'"),
        ("int and str unknown keys", (CHAOS + "1: x\ncolour: blue\n").encode(), "key '1'"),
        ("chaos a list", replace("chaos", "chaos: [a]", CHAOS).encode(), "chaos"),
        ("lab a list", replace("lab", "lab: [running]", CHAOS).encode(), "lab"),
        ("workload a list", (CHAOS + "workload: [writes]\n").encode(), "workload"),
        ("fault type a list", CHAOS.replace("type: latency", "type: [latency]").encode(), "faults[0]"),
        ("fault params a list", CHAOS.replace("{latency_ms: 200}", "[1]").encode(), "faults[0].params"),
        (
            "game day name an int",
            (CHAOS + "game_day: {faults: {1: {type: latency, targets: [db]}}}\n").encode(),
            "game_day.faults.1",
        ),
        (
            "game day type a list",
            (CHAOS + "game_day: {faults: {x: {type: [latency], targets: [db], params: {latency_ms: 1}}}}\n").encode(),
            "game_day.faults.x",
        ),
        ("nan duration", CHAOS.replace("duration: 5s", "duration: .nan").encode(), "faults[0].duration"),
        ("inf duration", CHAOS.replace("duration: 5s", "duration: .inf").encode(), "faults[0].duration"),
        ("huge duration", CHAOS.replace("duration: 5s", "duration: " + "9" * 400).encode(), "faults[0].duration"),
        (
            "5000-digit duration",
            CHAOS.replace("duration: 5s", "duration: " + "9" * 5000).encode(),
            "faults[0].duration",
        ),
        ("huge latency", CHAOS.replace("latency_ms: 200", "latency_ms: " + "9" * 400).encode(), "faults[0]"),
        ("nan target", (CHAOS + "targets: {rto_seconds: .nan}\n").encode(), "targets.rto_seconds"),
        (
            "huge stop condition",
            (CHAOS + "stop_conditions: {probe_failing_s: " + "9" * 400 + "}\n").encode(),
            "stop_conditions.probe_failing_s",
        ),
        ("chaos id with a newline", replace("chaos", 'chaos: "db\\n"', CHAOS).encode(), "chaos"),
        ("zero game day gap", (CHAOS + GAME_DAY % ("[0, 0]", "[100ms, 100ms]")).encode(), "game_day.gap"),
        (
            "10 ms game day faults",
            (CHAOS + GAME_DAY % ("[1s, 2s]", "[10ms, 10ms]")).encode(),
            "game_day.faults.tiny.duration",
        ),
        ("an escape in a key", (CHAOS + '"colour\\e[2J\\u2028": blue\n').encode(), "colour\\x1b[2J\\u2028"),
    ],
)
def test_drill_chaos_refuses_a_malformed_plan_in_one_line(tmp_path, capsys, monkeypatch, name, source, word):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path / "state"))
    plan = tmp_path / "chaos.yaml"
    plan.write_bytes(source)
    args = ["chaos", str(plan), "--out", str(tmp_path / "out"), "--cab-log", str(tmp_path / "cab.jsonl")]
    if name == "latin-1":
        done = subprocess.run(
            [*DRILL, *args], capture_output=True, text=True, cwd=ROOT, timeout=120, errors="replace", env={**os.environ}
        )
        code, stderr = done.returncode, done.stderr
    else:
        code, stderr = drill_in_process(args, capsys)
    assert code == 2, stderr[-3000:]
    line = one_line(stderr, f"drill: invalid chaos plan: {plan}:")
    assert word in line and len(line) < 600
    assert not (tmp_path / "out").exists()


def test_quoted_never_expands_a_huge_value():
    from harness.errors import quoted

    huge = [["x" * 1000] * 1000] * 1000  # a billion characters if printed whole
    assert len(quoted(huge)) <= 64
    assert len(quoted(10**5000)) <= 64 and "digit" in quoted(10**5000)
    assert quoted("short") == "'short'"


def test_a_document_of_many_plain_nodes_is_refused_without_expanding_it():
    from harness.plan import parse_yaml

    with pytest.raises(PlanError, match="too large"):
        parse_yaml(("x: [" + ",".join(["1"] * 100_001) + "]\n").encode(), Path("big.yaml"))


def test_a_row_the_provider_cannot_run_is_refused_before_any_lab_starts(tmp_path, capsys, monkeypatch):
    """The backup rows on containers: refused naming each row and the capability, nothing started
    (no engine is even looked for: the lab object is only made), nothing written."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(
        "harness.lab.containers.ContainerLab.up",
        lambda self: pytest.fail("the lab was started for a plan that must be refused"),
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "drill: backups-on-containers\ntitle: t\nha_domain: backup-restore\n"
        "lab: {provider: testcontainers}\nscenarios: '@ha-domain:backup-restore'\n"
    )
    code, stderr = drill_in_process(
        ["run", str(plan), "--out", str(tmp_path / "out"), "--cab-log", str(tmp_path / "cab.jsonl")], capsys
    )
    assert code == 2, stderr[-2000:]
    stderr = "\n".join(ln for ln in stderr.splitlines() if "created the CAB signing key" not in ln)
    line = one_line(stderr, f"drill: {plan}: the testcontainers lab cannot run these rows")
    assert line.count("row '") == 4 and "capability backups" in line and "leave them out" in line
    assert "row 'Backup and restore / Stale backup blocks deployments' (backup/stale_backup.feature)" in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "cab.jsonl").exists()


@pytest.mark.parametrize(
    "command, interrupted_in",
    [
        (["chaos", "{plan}", "--seed", "1", "--duration", "10s", "--dry-run"], "harness.chaos.plan.draw"),
        (["chaos", "{plan}", "--dry-run"], "harness.chaos.plan.load_chaos_plan"),
        (["validate", "{plan}"], "harness.validate.check_plan_file"),
    ],
    ids=["chaos drawing its game day", "chaos loading its plan", "validate"],
)
def test_ctrl_c_before_anything_started_does_not_say_faults_were_healed(
    tmp_path, capsys, monkeypatch, command, interrupted_in
):
    """A run that started nothing says so on Ctrl-C (exit 130), never "faults healed and lab
    taken down"."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path / "state"))
    plan = tmp_path / "chaos.yaml"
    plan.write_text(CHAOS + GAME_DAY % ("[1s, 2s]", "[1s, 2s]"))

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(interrupted_in, interrupt)
    code, stderr = drill_in_process(
        [a.replace("{plan}", str(plan)) for a in command]
        + (["--out", str(tmp_path / "out")] if command[0] == "chaos" else []),
        capsys,
    )
    assert code == 130
    line = one_line(stderr, "drill: interrupted")
    assert "healed" not in line and "taken down" not in line
    if command[0] == "chaos":
        assert line == "drill: interrupted; nothing had been started"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "blackout, word",
    [
        ("[{start: '0001-01-01T00:00+23:59', end: 2027-01-04, reason: freeze}]", "blackout[0]"),
        ("[{start: 2026-12-18, end: '9999-12-31T23:59-23:59', reason: freeze}]", "blackout[0]"),
    ],
)
def test_drill_validate_refuses_a_blackout_with_no_utc_time(tmp_path, capsys, monkeypatch, blackout, word):
    """validate said ok to a blackout before year 1 in UTC; the schedule then crashed on it."""
    monkeypatch.chdir(ROOT)
    plan = tmp_path / "plan.yaml"
    plan.write_text(GOOD + f"blackout: {blackout}\n")
    code = main(["validate", str(plan)])
    out = capsys.readouterr().out
    assert code == 2 and f"key '{word}'" in out and "years 1 to 9999" in out, out


def test_drill_validate_refuses_a_plan_that_is_a_device_a_fifo_or_too_large_at_once(tmp_path):
    """A plan is read with a 1 MiB cap, regular files only: /dev/zero was read until memory ran
    out, a FIFO waited for a writer forever, a 2 GiB file was read whole. Run in a process of its
    own, with its memory bounded, so that the old behaviour fails fast instead of eating the machine."""
    import resource

    fifo, big = tmp_path / "plan.fifo", tmp_path / "big.yaml"
    os.mkfifo(fifo)
    with open(big, "wb") as f:
        f.truncate(2 << 30)  # sparse: 2 GiB that take no disk

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))

    done = subprocess.run(
        [*DRILL, "validate", "/dev/zero", str(fifo), str(big)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        preexec_fn=limit_memory,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines == [
        "/dev/zero: the plan is a device, not a regular file; name a file",
        f"{fifo}: the plan is a FIFO (named pipe), not a regular file; name a file",
        f"{big}: the plan is larger than 1 MiB; this is not the file meant (or it was damaged): name the right one",
    ], done.stdout


@pytest.mark.parametrize(
    "flag, value, shown",
    [
        ("--owner", "Platform\x1b[8m SRE", "\\x1b"),
        ("--operator", "ops\x07", "\\x07"),
        ("--approver", "J. Doe\x7f", "\\x7f"),
        ("--change-ticket", "CHG\u2028123", "\\u2028"),
        ("--approver", "J. Doe \u202e(BAC)", "\\u202e"),
        ("--window", "0001-01-01T00:00+23:59/2026-01-01T00:00:00Z", "years 1 to 9999"),
    ],
)
def test_drill_run_refuses_a_sign_off_flag_a_reader_cannot_see_as_written(
    tmp_path, capsys, monkeypatch, flag, value, shown
):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(
        "harness.drill.run_drill", lambda *a, **k: pytest.fail("the drill ran with a sign-off that must be refused")
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(GOOD)
    code, stderr = drill_in_process(
        ["run", str(plan), flag, value, "--out", str(tmp_path / "out"), "--cab-log", str(tmp_path / "cab.jsonl")],
        capsys,
    )
    assert code == 2, stderr[-2000:]
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
    assert f"{flag}" in stderr and shown in stderr and value not in stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "cab.jsonl").exists()


# ---- targets never looser than the spec's floors (harness.spec_floors) --------------------------

LOOSER = [
    ("rto_seconds", "31536000", "at most 28800 s (8 h)"),
    ("rpo_seconds", "86400", "at most 300 s (5 min)"),
    ("availability", "0.5", "at least 0.999 (99.9%)"),
]


@pytest.mark.parametrize("key, value, floor", LOOSER, ids=[k for k, _, _ in LOOSER])
def test_drill_validate_refuses_a_target_looser_than_the_spec(tmp_path, capsys, monkeypatch, key, value, floor):
    monkeypatch.chdir(ROOT)
    plan = tmp_path / "plan.yaml"
    plan.write_text(GOOD + f"targets: {{{key}: {value}}}\n")
    code = main(["validate", str(plan)])
    out = capsys.readouterr().out
    assert code == 2, out
    assert f"key 'targets.{key}': {value} is looser than the spec's floor: {floor}" in out


def test_drill_run_refuses_a_looser_target_before_anything_starts(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr("harness.drill.run_drill", lambda *a, **k: pytest.fail("a looser plan ran"))
    plan = tmp_path / "plan.yaml"
    plan.write_text(GOOD + "targets: {rto_seconds: 31536000}\n")
    code, stderr = drill_in_process(
        ["run", str(plan), "--out", str(tmp_path / "out"), "--cab-log", str(tmp_path / "cab.jsonl")], capsys
    )
    assert code == 2
    line = one_line(stderr, f"drill: invalid plan: {plan}:")
    assert "key 'targets.rto_seconds': 31536000 is looser than the spec's floor: at most 28800 s" in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "cab.jsonl").exists()


def test_drill_chaos_refuses_a_looser_target_unless_waived(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path / "state"))
    plan = tmp_path / "chaos.yaml"
    plan.write_text(CHAOS + "targets: {rto_seconds: 60, availability: 0.99}\n")
    code, stderr = drill_in_process(
        ["chaos", str(plan), "--out", str(tmp_path / "out"), "--cab-log", str(tmp_path / "cab.jsonl")], capsys
    )
    assert code == 2
    line = one_line(stderr, f"drill: invalid chaos plan: {plan}:")
    assert "key 'targets.availability': 0.99 is looser than the spec's floor: at least 0.999" in line
    assert not (tmp_path / "out").exists()
    expires = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=10)).isoformat()
    plan.write_text(
        CHAOS + "targets: {rto_seconds: 60, availability: 0.99}\nwaivers:\n"
        f"  - {{gate: availability, reason: game day on a degraded lab, approved_by: CAB, "
        f"expires: {expires}}}\n"
    )
    assert main(["validate", str(plan)]) == 0, capsys.readouterr().out
    assert load_chaos_plan(plan).waivers["availability"].floor_value == 0.999


def test_the_schedule_refuses_a_plan_with_a_looser_target(tmp_path):
    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "loose.yaml").write_text(GOOD.replace("quarterly-database", "loose") + "targets: {rpo_seconds: 86400}\n")
    (folder / "good.yaml").write_text(GOOD)
    plans, errors = load_plans(folder, ROOT)
    assert sorted(plans) == ["quarterly-database"]
    assert len(errors) == 1 and "key 'targets.rpo_seconds': 86400 is looser than the spec's floor" in errors[0]


def test_no_shipped_plan_is_looser_than_the_spec():
    for path in sorted((ROOT / "drills").glob("*.yaml")):
        assert load_plan(path, ROOT).waivers == {}, path.name
    for path in sorted((ROOT / "drills" / "chaos").glob("*.yaml")):
        assert load_chaos_plan(path).waivers == {}, path.name
