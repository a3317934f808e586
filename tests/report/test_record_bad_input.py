"""The record's commands on tampered evidence and hostile input: `drill report` never re-signs a
folder `drill verify` does not find intact, and no CAB log, key, manifest or results file makes
verify, cab verify, report, history or matrix crash (exit 70) or hang."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.cab.ledger import append_cab_record, entry_hash, load_key
from harness.cli import main
from harness.report.manifest import write_manifest


def drill(*args: str) -> subprocess.CompletedProcess:
    """`drill ARGS` in this process: its exit code, stdout and stderr. What this module tests is each
    command's answer to bad input (a crash is exit 70, as in a child); a `drill` child process per case
    cost about 2 s each (120 s for the module). The commands as a child process: test_record_cli.py.
    A hang would still fail the case, at pytest's timeout."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: a usage error
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(["drill", *args], code, out.getvalue(), err.getvalue())


def _lines(log: Path) -> int:
    return len(log.read_bytes().splitlines())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- drill report never re-signs tampered evidence -----------------------------------------------


def test_report_refuses_an_edited_results_file_whose_manifest_was_recomputed(recorded):
    folder, log = recorded["dirs"][1], recorded["log"]
    results = folder / "results.json"
    results.write_text(results.read_text().replace('"verdict": "pass"', '"verdict": "fail"'))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["results.json"] = _sha(results)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    before, html = _lines(log), (folder / "report.html").read_bytes()

    refused = drill("report", str(folder), *recorded["args"])

    assert refused.returncode == 1, refused.stderr
    assert "NOT INTACT" in refused.stdout and "manifest.json: its sha256 is not the one" in refused.stdout
    assert _lines(log) == before and (folder / "report.html").read_bytes() == html  # nothing signed or written
    still = drill("verify", str(folder), *recorded["args"])
    assert still.returncode == 1 and "NOT INTACT" in still.stdout


def test_report_refuses_a_folder_whose_manifest_was_deleted(recorded):
    folder, log = recorded["dirs"][1], recorded["log"]
    results = folder / "results.json"
    results.write_text(results.read_text().replace('"verdict": "pass"', '"verdict": "fail"'))
    (folder / "manifest.json").unlink()
    before = _lines(log)

    refused = drill("report", str(folder), *recorded["args"])

    assert refused.returncode == 1 and "no manifest" in refused.stdout
    assert _lines(log) == before and not (folder / "manifest.json").exists()
    assert drill("verify", str(folder), *recorded["args"]).returncode == 1


def test_report_rebuilds_an_intact_folder_and_the_rebuild_verifies(recorded):
    folder, log = recorded["dirs"][1], recorded["log"]
    before = _lines(log)
    done = drill("report", str(folder), *recorded["args"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert _lines(log) == before + 1
    assert drill("verify", str(folder), *recorded["args"]).returncode == 0


def test_report_refuses_when_the_log_has_no_line_for_the_folder(recorded, tmp_path):
    other = tmp_path / "other.jsonl"
    key = load_key(recorded["args"][3])
    append_cab_record(other, {"kind": "drill", "drill": "x", "out_dir": "/elsewhere"}, key)
    refused = drill("report", str(recorded["dirs"][1]), "--cab-log", str(other), "--cab-key", recorded["args"][3])
    assert refused.returncode == 1 and "no line of" in refused.stdout and _lines(other) == 1


# ---- CAB log lines that are not entries ----------------------------------------------------------

BAD_LINES = {
    "nested 1000 deep": b"[" * 1000 + b"]" * 1000,
    "a \\xff byte": b'{"prev_hash": "\xff"}',
    "1e999": b"1e999",
}


@pytest.mark.parametrize("bad", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_bad_line_is_named_by_every_reader_and_crashes_none(recorded, bad, tmp_path):
    log = recorded["log"]
    with open(log, "ab") as f:
        f.write(bad + b"\n")
    cab = drill("cab", "verify", *recorded["args"])
    assert cab.returncode == 1 and "line 3: not a CAB log entry" in cab.stdout, cab.stdout + cab.stderr
    verify = drill("verify", str(recorded["dirs"][1]), *recorded["args"])
    assert verify.returncode == 0 and "INTACT" in verify.stdout, verify.stderr  # its own line is intact
    history = drill("history", "--json", "--html", str(tmp_path / "h.html"), *recorded["args"])
    assert history.returncode == 0 and json.loads(history.stdout)["skipped_unverified"] == 1, history.stderr
    matrix = drill("matrix", "--json", *recorded["args"])
    assert matrix.returncode == 0 and json.loads(matrix.stdout)["skipped_unverified"] == 1, matrix.stderr
    report = drill("report", str(recorded["dirs"][1]), *recorded["args"])
    assert report.returncode == 1 and "last line is not a CAB log entry" in report.stdout
    assert _lines(log) == 3


def test_a_chained_line_with_a_non_ascii_mac_is_a_bad_mac_not_a_crash(recorded):
    log = recorded["log"]
    key = load_key(recorded["args"][3])
    last = json.loads(log.read_text().splitlines()[-1])
    entry = {"kind": "drill", "verdict": "pass", "prev_hash": last["hash"], "key_id": key.key_id, "mac": "\u00e9"}
    entry["hash"] = entry_hash(entry)
    with open(log, "a") as f:
        f.write(json.dumps(entry) + "\n")
    cab = drill("cab", "verify", *recorded["args"])
    assert cab.returncode == 1 and "line 3: its mac does not match" in cab.stdout, cab.stdout + cab.stderr


def test_a_line_over_the_cap_is_a_bad_line_not_a_memory_hog(recorded):
    with open(recorded["log"], "ab") as f:
        f.write(b'{"x": "' + b"a" * (1 << 20) + b'"}\n')
    cab = drill("cab", "verify", *recorded["args"])
    assert cab.returncode == 1 and "line 3: not a CAB log entry (longer than 1 MiB)" in cab.stdout


@pytest.mark.parametrize(
    "command",
    [["cab", "verify"], ["verify", "{dir}"], ["history", "--html", "{html}"], ["matrix"], ["report", "{dir}"]],
)
@pytest.mark.parametrize("log", ["folder", "/dev/zero", "fifo"])
def test_a_cab_log_that_is_not_a_file_is_refused_at_once(recorded, tmp_path, command, log):
    if log == "folder":
        log = str(tmp_path)
    elif log == "fifo":
        os.mkfifo(tmp_path / "fifo")
        log = str(tmp_path / "fifo")
    args = [a.format(dir=recorded["dirs"][1], html=tmp_path / "h.html") for a in command]
    done = drill(*args, "--cab-log", log, "--cab-key", recorded["args"][3])
    assert done.returncode == 2, done.stdout + done.stderr
    assert "CAB log" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "command",
    [["cab", "verify"], ["verify", "{dir}"], ["history", "--html", "{html}"], ["matrix"], ["report", "{dir}"]],
)
@pytest.mark.parametrize("key", ["/dev/zero", "folder", "missing"])
def test_a_cab_key_that_is_not_a_key_file_is_refused(recorded, tmp_path, command, key):
    key = {"folder": str(tmp_path), "missing": str(tmp_path / "none.key")}.get(key, key)
    args = [a.format(dir=recorded["dirs"][1], html=tmp_path / "h.html") for a in command]
    done = drill(*args, "--cab-log", str(recorded["log"]), "--cab-key", key)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "CAB key" in done.stderr and "Traceback" not in done.stderr


def test_a_run_with_a_cab_log_it_cannot_append_to_is_refused_before_the_lab(tmp_path):
    (tmp_path / "log.jsonl").write_text("not an entry\n")
    (tmp_path / "k.key").write_text(os.urandom(32).hex())
    for log in (tmp_path, tmp_path / "log.jsonl"):
        done = drill(
            "run",
            "drills/quarterly-database.yaml",
            "--out",
            str(tmp_path / "out"),
            "--cab-log",
            str(log),
            "--cab-key",
            str(tmp_path / "k.key"),
        )
        assert done.returncode == 2 and ("CAB log" in done.stderr or "last line" in done.stderr), done.stderr
        assert not (tmp_path / "out").exists() and "starting" not in done.stderr


# ---- results.json and manifest.json that are not records --------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"[]", b"null", b'"x"', b"1e999", b"[" * 100_000 + b"]" * 100_000, b'{"drill": 5, "scenarios": "x"}'],
    ids=["list", "null", "string", "1e999", "nested", "wrong-shape"],
)
def test_report_of_a_sealed_results_file_that_is_not_results_says_so(tmp_path, content):
    """The folder is sealed and recorded as a drill would be, so only the content is wrong."""
    key_path = tmp_path / "cab.key"
    key_path.write_text(os.urandom(32).hex())
    folder, log = tmp_path / "out", tmp_path / "cab.jsonl"
    folder.mkdir()
    (folder / "results.json").write_bytes(content)
    digest = write_manifest(folder, {"drill": "x"})
    append_cab_record(
        log, {"kind": "drill", "drill": "x", "out_dir": str(folder.resolve()), "manifest": digest}, load_key(key_path)
    )
    done = drill("report", str(folder), "--cab-log", str(log), "--cab-key", str(key_path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "results.json" in done.stderr and "Traceback" not in done.stderr
    assert _lines(log) == 1 and not (folder / "report.html").exists()


def _manifest_cases(folder: Path, tmp_path: Path) -> dict[str, callable]:
    def nested():
        (folder / "manifest.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)

    def to_dev_zero():
        (folder / "manifest.json").unlink()
        (folder / "manifest.json").symlink_to("/dev/zero")

    def fifo():
        (folder / "manifest.json").unlink()
        os.mkfifo(folder / "manifest.json")

    def lists_a_fifo():
        os.mkfifo(folder / "pipe")
        data = json.loads((folder / "manifest.json").read_text())
        data["files"]["pipe"] = "0" * 64
        (folder / "manifest.json").write_text(json.dumps(data))

    def escape_in_a_name():
        data = json.loads((folder / "manifest.json").read_text())
        data["files"]["evil\x1b[2J.json"] = "0" * 64
        (folder / "manifest.json").write_text(json.dumps(data))

    return {
        "nested": nested,
        "symlink to /dev/zero": to_dev_zero,
        "fifo": fifo,
        "lists a fifo": lists_a_fifo,
        "escape in a name": escape_in_a_name,
    }


@pytest.mark.parametrize("case", ["nested", "symlink to /dev/zero", "fifo", "lists a fifo", "escape in a name"])
def test_a_manifest_that_is_not_a_manifest_is_not_intact_never_a_hang(recorded, tmp_path, case):
    folder = recorded["dirs"][1]
    _manifest_cases(folder, tmp_path)[case]()
    for command in (["verify", str(folder)], ["report", str(folder)]):
        done = drill(*command, *recorded["args"])
        assert done.returncode == 1 and "NOT INTACT" in done.stdout, done.stdout + done.stderr
        assert "\x1b" not in done.stdout and "Traceback" not in done.stderr


# ---- drill history --html ----------------------------------------------------------------------


def test_history_refuses_a_page_in_a_folder_that_does_not_exist(recorded, tmp_path):
    page = tmp_path / "no" / "such" / "history.html"
    done = drill("history", "--html", str(page), *recorded["args"])
    assert done.returncode == 2 and "does not exist" in done.stderr
    assert not (tmp_path / "no").exists()
    folder = drill("history", "--html", str(tmp_path), *recorded["args"])
    assert folder.returncode == 2 and "is a folder" in folder.stderr


def test_a_cab_log_name_too_long_is_refused_in_one_line(tmp_path):
    (tmp_path / "k.key").write_text(os.urandom(32).hex())
    done = drill(
        "run",
        "drills/quarterly-database.yaml",
        "--out",
        str(tmp_path / "out"),
        "--cab-log",
        str(tmp_path / ("x" * 300)),
        "--cab-key",
        str(tmp_path / "k.key"),
    )
    assert done.returncode == 2 and "cannot use as the CAB log" in done.stderr, done.stderr
