"""A seeded fuzz of what users hand the harness: drill plans, chaos plans and external plans (their
YAML values and bytes), CAB logs and drill output folders. Every command answers with a documented
exit code and no traceback: never 70 (a harness bug), never a hang. And whatever is done to an
output folder's files, `drill report` never signs it again.

Seed and size: DRILL_FUZZ_SEED (default below), DRILL_FUZZ_CASES per family (default 120). A failure
prints the seed, the case number and the input, so it can be replayed."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import random
from pathlib import Path
from typing import Any

import yaml

from harness import exits
from harness.cli import main
from tests.report.conftest import recorded  # noqa: F401 - the fixture: two drills recorded in a CAB log

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("DRILL_FUZZ_SEED", "20261207"))
CASES = int(os.environ.get("DRILL_FUZZ_CASES", "120"))

EXTERNAL_PLAN = """\
drill: staging-database
title: Staging database failover
ha_domain: database
scenarios: [scenarios/database/primary_failover.feature]
environment: {class: staging, name: staging-eu}
lab:
  provider: external
  api_url: https://cp.staging.example:8443
  toxiproxy_url: http://toxiproxy.staging.example:8474
  database:
    failover_target: pg-b
    replication_proxy: repl-pg-b
    nodes:
      pg-a: {dsn: "host=pg-a port=5432 dbname=controlplane user=drill", password_env: STAGING_PG_PASSWORD}
      pg-b: {dsn: "host=pg-b port=5432 dbname=controlplane user=drill", password_file: /run/secrets/pg}
  actions:
    kill_database_primary: {http: {url: https://ops.staging.example/kill-primary, token_env: OPS_TOKEN}}
    database_rebuild: {http: {url: https://ops.staging.example/rebuild, token_file: /run/secrets/ops}, timeout_s: 60}
    database_failback: {command: ["/opt/runbooks/failback.sh"], timeout_s: 30}
  allow_destructive: true
  blast_radius: [database-primary, repl-pg-b]
  clock: {token_env: CLOCK_TOKEN}
owner: Platform SRE
change_ticket: CHG0012345
window: {start: 2026-12-01T06:00:00Z, end: 2026-12-01T08:00:00Z}
blackout: [{start: 2026-12-18, end: 2027-01-04, reason: year-end freeze}]
schedule: "0 6 1 1,4,7,10 *"
"""

# values a user (or an attacker) may put anywhere in a plan
ODD: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**64,
    10**400,
    1e300,
    -1e300,
    float("nan"),
    float("inf"),
    -0.0,
    0.001,
    "",
    " ",
    "\x1b[2J",
    "a\u202eb",
    "line\u2028sep",
    "\x00",
    "a" * 5000,
    "http://[::1",
    "http://h:99999",
    "0 0 31 2 *",
    "* * * * * *",
    "10ms",
    "0s",
    "-5s",
    "1e999",
    "soon",
    "../../etc/passwd",
    "/dev/zero",
    "(" * 200 + "@a" + ")" * 200,
    "not " * 200 + "@a",
    "@quarterly and (",
    "postgresql://u:pw@h/db",
    "host=h password\t=x",
    "0001-01-01T00:00+23:59",
    "9999-12-31T23:59:59-23:59",
    dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=23, minutes=59))),
    dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone(-dt.timedelta(hours=23, minutes=59))),
    dt.date(1, 1, 1),
    dt.date(9999, 12, 31),
    [],
    {},
    [[[[[]]]]],
    {"a": {"b": {"c": {}}}},
    ["", ""],
    [None],
    {"http": {"url": "http://x", "tokn": "y"}},
    {"command": []},
    {"start": "x", "end": "y"},
    [0, 0],
    ["0s", "0s"],
]
# raw YAML text put in place of a scalar (what a dump of Python values cannot write)
ODD_TEXT = [
    "0001-01-01T00:00+23:59",
    "2026-13-45",
    ".nan",
    "-.inf",
    "9" * 400,
    "9" * 5000,
    "&a [*a]",
    "!!python/object:os.system",
    "'\\x1b'",
    "[" * 100,
    "{a: *b}",
    "0x7fffffff",
    "0o777",
    "1_000",
    "~",
    "!!binary AAAA",
]


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value in a parsed document."""
    found = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            found += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _paths(v, prefix + (i,))
    return found


def _set(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return doc


def _mutate_plan(source: str, rng: random.Random) -> bytes:
    """One mutation of a plan: a value replaced by an odd one, a key renamed, raw text put in a
    scalar's place, or bytes flipped, cut or repeated."""
    how = rng.randrange(5)
    if how <= 1:
        doc = yaml.safe_load(source)
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(_paths(doc))
            doc = _set(doc, path, copy.deepcopy(rng.choice(ODD)))
        return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode("utf-8", "surrogatepass")
    if how == 2:
        doc = yaml.safe_load(source)
        maps = [p for p in _paths(doc) if isinstance(_get(doc, p), dict) and _get(doc, p)]
        path = rng.choice(maps)
        node = _get(doc, path)
        key = rng.choice(list(node))
        node[rng.choice(["\x1b[31mcolour", key + "s", key.upper(), 1, "", key[:-1]])] = node.pop(key)
        return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False).encode()
    if how == 3:
        lines = source.splitlines()
        i = rng.randrange(len(lines))
        key, sep, _ = lines[i].partition(": ")
        if sep:
            lines[i] = f"{key}: {rng.choice(ODD_TEXT)}"
        return ("\n".join(lines) + "\n").encode()
    data = bytearray(source.encode())
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(data))
        action = rng.randrange(3)
        if action == 0:
            data[pos] = rng.randrange(256)
        elif action == 1:
            del data[pos : pos + rng.randint(1, 40)]
        else:
            data[pos:pos] = data[pos : pos + rng.randint(1, 200)] * rng.randint(1, 50)
    return bytes(data)


def _get(doc: Any, path: tuple) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _call(capsys, argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _no_crash(code: int, allowed: set[int], err: str, what: str) -> None:
    assert "Traceback" not in err and code != exits.CRASH, f"{what}: exit {code}\n{err[-3000:]}"
    assert code in allowed, f"{what}: exit {code}, allowed {sorted(allowed)}\n{err[-2000:]}"


def _bases() -> dict[str, str]:
    plans = {p.relative_to(ROOT).as_posix(): p.read_text() for p in sorted((ROOT / "drills").rglob("*.yaml"))}
    return {**plans, "external.yaml": EXTERNAL_PLAN}


def test_every_base_plan_is_valid_so_the_mutations_start_from_good_plans(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    for name, text in _bases().items():
        (tmp_path / "p.yaml").write_text(text)
        code, _, err = _call(capsys, ["validate", str(tmp_path / "p.yaml")])
        assert code == 0, f"{name}: {err}"


def test_fuzzed_plans_validate_and_load_for_a_run_without_a_crash(capsys, monkeypatch, tmp_path):
    """Each mutated plan through `drill validate`, then, when valid, through `drill run` up to
    the lab (plan, sign-off, window, CAB log: run_drill replaced by a stand-in that starts
    nothing) or `drill chaos` up to the lab (the game day drawn; the lab refuses to start)."""
    import harness.chaos.cli as chaos_cli
    import harness.drill as drill
    from harness.errors import LabStartError

    class NoLab:
        dry_run = False

        def up(self):
            raise LabStartError("the fuzz starts no lab")

        def down(self):
            pass

    started: list[str] = []
    monkeypatch.setattr(drill, "run_drill", lambda plan, *a, **k: (started.append(plan.drill), (0, None))[1])
    monkeypatch.setattr(chaos_cli, "_open_lab", lambda plan, confirm: (NoLab(), False))
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DRILL_CAB_KEY", str(tmp_path / "cab.key"))
    rng = random.Random(SEED)
    bases = _bases()
    plan = tmp_path / "plan.yaml"
    valid = 0
    for case in range(CASES * 3):
        name = rng.choice(sorted(bases))
        data = _mutate_plan(bases[name], rng)
        plan.write_bytes(data)
        what = f"seed {SEED} case {case} (from {name}): {data[:400]!r}"
        code, _, err = _call(capsys, ["validate", str(plan)])
        _no_crash(code, {0, 2}, err, f"validate {what}")
        if code != 0:
            continue
        valid += 1
        is_chaos = isinstance(yaml.safe_load(data), dict) and "chaos" in yaml.safe_load(data)
        if is_chaos:
            argv = [
                "chaos",
                str(plan),
                "--out",
                str(tmp_path / "out"),
                "--cab-log",
                str(tmp_path / "cab.jsonl"),
                "--dry-run",
            ] + (["--seed", "1", "--duration", "10s"] if b"game_day" in data else [])
            code, _, err = _call(capsys, argv)
            _no_crash(code, {2, 4}, err, f"chaos {what}")
        else:
            code, _, err = _call(
                capsys, ["run", str(plan), "--out", str(tmp_path / "out"), "--cab-log", str(tmp_path / "cab.jsonl")]
            )
            _no_crash(code, {0, 2}, err, f"run {what}")
    print(f"fuzz: {CASES * 3} plans, {valid} still valid, {len(started)} reached the lab")
    assert valid and started, "no mutation stayed valid: the fuzz reaches only the parser's first checks"


# ---- CAB logs ----------------------------------------------------------------------------------


def _mutate_log(lines: list[bytes], rng: random.Random) -> tuple[list[bytes], bool]:
    """(mutated lines, whether a line's content was changed in place: then `cab verify` must fail)."""
    lines = list(lines)
    how = rng.randrange(7)
    if how == 0:  # a byte of a line changed
        i = rng.randrange(len(lines))
        line = bytearray(lines[i])
        pos = rng.randrange(len(line))
        line[pos] = rng.choice([b for b in range(256) if b not in (line[pos], 0x0A)])
        lines[i] = bytes(line)
        return lines, True
    if how == 1:  # a value of an entry changed, the line still JSON
        i = rng.randrange(len(lines))
        entry = json.loads(lines[i])
        key = rng.choice(sorted(entry))
        entry[key] = copy.deepcopy(
            rng.choice([v for v in ODD if isinstance(v, (str, int, list, dict)) and v != entry[key]])
        )
        lines[i] = json.dumps(entry, separators=(",", ":"), sort_keys=True).encode()
        return lines, True
    if how == 2:
        del lines[rng.randrange(len(lines))]
    elif how == 3:
        i = rng.randrange(len(lines))
        lines.insert(rng.randrange(len(lines) + 1), lines[i])
    elif how == 4:
        lines.insert(
            rng.randrange(len(lines) + 1),
            rng.choice(
                [
                    b"[" * 5000 + b"]" * 5000,
                    b"\xff\xfe",
                    b"1e999",
                    b"null",
                    b"{}",
                    b'{"prev_hash": 5}',
                    b"x" * 3000,
                    json.dumps({"prev_hash": "0" * 64, "hash": "0" * 64, "mac": "\u00e9", "key_id": None}).encode(),
                ]
            ),
        )
    elif how == 5:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines[-1] = lines[-1][: rng.randrange(len(lines[-1]))]
    return lines, False


def test_fuzzed_cab_logs_are_judged_never_crash_and_a_changed_line_is_named(recorded, capsys, tmp_path):  # noqa: F811
    log, args = recorded["log"], recorded["args"]
    assert main(["report", str(recorded["dirs"][0]), *args]) == 0  # a rebuild line too
    capsys.readouterr()
    original = log.read_bytes().splitlines()
    rng = random.Random(SEED + 1)
    for case in range(CASES):
        lines, changed = _mutate_log(original, rng)
        truncated = rng.random() < 0.2
        log.write_bytes(b"\n".join(lines) + (b"" if truncated else b"\n"))
        what = f"seed {SEED + 1} case {case}: {b'|'.join(lines)[:300]!r}"
        code, out, err = _call(capsys, ["cab", "verify", *args])
        _no_crash(code, {0, 1}, err, f"cab verify {what}")
        if changed:
            assert code == 1 and "NOT INTACT" in out, f"cab verify passed a changed line: {what}"
        for argv in (
            ["matrix", "--json"],
            ["history", "--json", "--html", str(tmp_path / "h.html")],
            ["verify", str(recorded["dirs"][1])],
        ):
            code, _, err = _call(capsys, [*argv, *args])
            _no_crash(code, {0, 1}, err, f"{argv[0]} {what}")
        size = log.stat().st_size
        code, _, err = _call(capsys, ["report", str(recorded["dirs"][1]), *args])
        _no_crash(code, {0, 1}, err, f"report {what}")
        if code != 0:
            assert log.stat().st_size == size, f"a refused report wrote to the log: {what}"
        log.write_bytes(b"\n".join(original) + b"\n")  # the folder's own line again, for the next case


# ---- output folders ----------------------------------------------------------------------------


def _mutate_folder(folder: Path, rng: random.Random, outside: Path) -> str:
    """One change to a sealed folder that changes what a covered file or the manifest holds."""
    name = rng.choice(sorted(p.name for p in folder.iterdir() if p.is_file()))
    path = folder / name
    how = rng.randrange(8)
    if how == 0:
        data = bytearray(path.read_bytes())
        pos = rng.randrange(len(data))
        data[pos] = rng.choice([b for b in range(256) if b != data[pos]])
        path.write_bytes(bytes(data))
    elif how == 1:
        path.write_bytes(path.read_bytes()[: rng.randrange(path.stat().st_size)])
    elif how == 2:
        path.write_bytes(
            rng.choice(
                [
                    b"[]",
                    b"null",
                    b'"x"',
                    b"1e999",
                    b"[" * 100_000 + b"]" * 100_000,
                    b"\xff",
                    b'{"files": {"../x": "0"}}',
                    b'{"files": {"\x1b[2J": 5}}',
                    b"",
                    json.dumps({"files": {name: "0" * 64}}).encode(),
                ]
            )
        )
    elif how == 3:
        path.unlink()
        path.symlink_to(rng.choice(["/dev/zero", str(outside), "/nonexistent", name]))
    elif how == 4:
        path.unlink()
        os.mkfifo(path)
    elif how == 5:
        path.unlink()
        path.mkdir()
    elif how == 6:
        path.unlink()
    else:  # the file edited and the manifest re-computed to match
        from harness.report.manifest import sha256_file

        target = folder / rng.choice(["results.json", "report.html", "junit.xml"])
        target.write_bytes(target.read_bytes() + b" ")
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["files"][target.name] = sha256_file(target)
        (folder / "manifest.json").write_text(json.dumps(manifest))
        return f"{target.name} edited, manifest re-computed"
    return f"{name}: mutation {how}"


def test_fuzzed_output_folders_are_never_signed_again(recorded, capsys, tmp_path):  # noqa: F811
    import shutil

    folder, log, args = recorded["dirs"][1], recorded["log"], recorded["args"]
    pristine = tmp_path / "pristine"
    shutil.copytree(folder, pristine, symlinks=True)
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    rng = random.Random(SEED + 2)
    for case in range(CASES):
        shutil.rmtree(folder)
        shutil.copytree(pristine, folder, symlinks=True)
        what = f"seed {SEED + 2} case {case}: {_mutate_folder(folder, rng, outside)}"
        code, out, err = _call(capsys, ["verify", str(folder), *args])
        _no_crash(code, {1}, err, f"verify {what}")
        size = log.stat().st_size
        code, out, err = _call(capsys, ["report", str(folder), *args])
        _no_crash(code, {1}, err, f"report {what}")
        assert log.stat().st_size == size and "NOT INTACT" in out, f"report of a changed folder: {what}\n{out}"


def test_the_folder_fuzz_control_an_unchanged_folder_is_signed(recorded, capsys):  # noqa: F811
    """Unchanged, the same folder is signed again: the fuzz's refusals are about its changes."""
    code, out, err = _call(capsys, ["report", str(recorded["dirs"][1]), *recorded["args"]])
    assert code == 0, out + err
