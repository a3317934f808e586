"""One 200 ms latency chaos experiment, wall time: Chaos Toolkit (`chaos run`, with chaostoolkit-toxiproxy
driving the embedded fault server of a `drill lab up` lab) beside `drill chaos
drills/chaos/db-latency-200ms.yaml` against the same lab. Each is timed as a whole subprocess (Python
start-up included), --runs times, interleaved; printed: median, min and max of each, and the ratio
drill chaos / Chaos Toolkit of the medians.

The Chaos Toolkit experiment (written to a temporary directory as JSON):
  method      create_proxy `ctk-bench` (127.0.0.1:<free port> -> the lab's Control Plane API), then
              create_latency_toxic 200 ms (downstream, toxicity 1)
  hypothesis  after the method only: GET /health through the proxy, round trip in ms (a python probe:
              health_round_trip_ms of this module), tolerance range [200, 10000]
  rollbacks   delete_toxic, delete_proxy (played always)
A run counts only if its journal says status "completed", deviated false, every activity succeeded,
the toxic was deleted, and the fault server no longer lists the proxy; otherwise the benchmark fails.

The two do not do the same work in the measured time (printed with the figures): read the ratio as
what a full drill chaos run costs over a bare fault injection, not as the speed of one engine.
Needs the bench extra (pip install -e ".[test,bench]"). Run from the repository root:
python benchmarks/chaos_vs_chaostoolkit.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the venv this benchmark runs in: drill and chaos
PLAN = "drills/chaos/db-latency-200ms.yaml"
PROXY, TOXIC, LATENCY_MS = "ctk-bench", "ctk-bench-latency", 200
CTK = "Chaos Toolkit"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
DRILL = "drill chaos"
DOES = {
    CTK: "process start-up and imports, experiment validation, create proxy + add the 200 ms toxic, one "
    "GET /health through the proxy (the hypothesis, ~0.2 s), remove the toxic + delete the proxy, "
    "journal. Nothing holds the fault for a set time; no workload, no gates, no report.",
    DRILL: "process start-up and imports, plan load, attach to the lab, steady state, the writes workload and "
    "probes throughout, 200 ms on the database link after 1 s held for 3 s (4 s of the time is the "
    "plan's own schedule), heal, recovery and lost-write gates (RTO, lost writes), results.json, "
    "junit.xml, report.html, the CAB log line.",
}


def health_round_trip_ms(url: str, timeout: float = 10.0) -> float:
    """The experiment's probe (run inside `chaos run`): milliseconds from sending GET `url` on a new
    connection to having its whole answer; any HTTP status counts as an answer."""
    started = time.perf_counter()
    with requests.Session() as session:
        _ = session.get(url, timeout=timeout).content  # the whole body read
    return round((time.perf_counter() - started) * 1000, 1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def experiment(fault_url: str, api_url: str, listen_port: int) -> dict:
    fault, api = urlsplit(fault_url), urlsplit(api_url)

    def activity(kind: str, name: str, module: str, func: str, **arguments) -> dict:
        return {
            "type": kind,
            "name": name,
            "provider": {"type": "python", "module": module, "func": func, "arguments": arguments},
        }

    return {
        "version": "1.0.0",
        "title": f"{LATENCY_MS} ms of latency in front of the Control Plane API",
        "description": "Benchmark (benchmarks/chaos_vs_chaostoolkit.py): a latency toxic on a proxy of the "
        "embedded fault server; GET /health through it must take at least the latency.",
        "tags": ["benchmark", "toxiproxy"],
        # chaostoxi.toxiproxyapi.build_baseUrl: toxiproxy_url, else http://toxiproxy_host:toxiproxy_port
        "configuration": {"toxiproxy_host": fault.hostname, "toxiproxy_port": fault.port},
        "runtime": {"hypothesis": {"strategy": "after-method-only"}, "rollbacks": {"strategy": "always"}},
        "steady-state-hypothesis": {
            "title": f"GET /health through the proxy takes at least {LATENCY_MS} ms",
            "probes": [
                {
                    **activity(
                        "probe",
                        "health-round-trip-ms",
                        "chaos_vs_chaostoolkit",
                        "health_round_trip_ms",
                        url=f"http://127.0.0.1:{listen_port}/health",
                    ),
                    "tolerance": {"type": "range", "range": [LATENCY_MS, 10000]},
                }
            ],
        },
        "method": [
            activity(
                "action",
                "create-proxy",
                "chaostoxi.proxy.actions",
                "create_proxy",
                proxy_name=PROXY,
                listen_host="127.0.0.1",
                listen_port=listen_port,
                upstream_host=api.hostname,
                upstream_port=api.port,
            ),
            activity(
                "action",
                "add-latency-toxic",
                "chaostoxi.toxic.actions",
                "create_latency_toxic",
                for_proxy=PROXY,
                toxic_name=TOXIC,
                latency=LATENCY_MS,
                jitter=0,
            ),
        ],
        "rollbacks": [
            activity(
                "action",
                "remove-latency-toxic",
                "chaostoxi.toxic.actions",
                "delete_toxic",
                for_proxy=PROXY,
                toxic_name=TOXIC,
            ),
            activity("action", "delete-proxy", "chaostoxi.proxy.actions", "delete_proxy", proxy_name=PROXY),
        ],
    }


def tail(text: str, lines: int = 15) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:]) or "    (nothing)"


def proxy_exists(fault_url: str) -> bool:
    return PROXY in requests.get(f"{fault_url}/proxies", timeout=5).json()


def ctk_run(work: Path, fault_url: str, api_url: str, env: dict) -> tuple[float, float, float]:
    """One `chaos run`: (wall seconds, the journal's own duration, the probe's round trip in ms)."""
    work.mkdir()
    source = work / "experiment.json"
    source.write_text(json.dumps(experiment(fault_url, api_url, free_port()), indent=2))
    journal_path, log = work / "journal.json", work / "chaostoolkit.log"
    # no version check: it asks releases.chaostoolkit.org, which is not part of the experiment; no
    # user settings (a settings file that does not exist is none)
    command = [
        str(BIN / "chaos"),
        "--no-version-check",
        "--log-file",
        str(log),
        "--settings",
        str(work / "no-settings.yaml"),
        "run",
        "--journal-path",
        str(journal_path),
        str(source),
    ]
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - started

    def fail(why: str) -> SystemExit:
        console = ANSI.sub("", done.stderr)
        return SystemExit(f"{CTK}: {why} (exit {done.returncode}); its console log, last lines:\n{tail(console, 25)}")

    if not journal_path.exists():
        raise fail("no journal written")
    journal = json.loads(journal_path.read_text())
    if journal.get("status") != "completed" or journal.get("deviated") is not False:
        raise fail(
            f"journal status {journal.get('status')!r}, deviated {journal.get('deviated')!r}; "
            f"expected 'completed' and false"
        )
    activities = [*journal.get("run", []), *journal.get("rollbacks", [])]
    names = [a["activity"]["name"] for a in activities]
    if names != ["create-proxy", "add-latency-toxic", "remove-latency-toxic", "delete-proxy"]:
        raise fail(f"the journal's activities are {names}")
    for a in activities:
        if a["status"] != "succeeded":
            raise fail(f"activity {a['activity']['name']}: {a['status']}: {a.get('exception') or a.get('output')}")
    if activities[2].get("output") is not True:  # delete_toxic answers False, it does not raise
        raise fail(
            f"remove-latency-toxic: the fault server did not delete the toxic (output {activities[2].get('output')!r})"
        )
    after = (journal.get("steady_states") or {}).get("after") or {}
    probes = after.get("probes") or []
    if not after.get("steady_state_met") or not probes or not isinstance(probes[0].get("output"), (int, float)):
        raise fail(f"the hypothesis after the method: {after!r}")
    if proxy_exists(fault_url):
        raise fail(f"proxy {PROXY} still listed by the fault server after the rollbacks")
    if done.returncode != 0:
        raise fail("the journal is fine but the command failed")
    return wall, float(journal["duration"]), float(probes[0]["output"])


def drill_run(work: Path, env: dict) -> tuple[float, int, str]:
    """One `drill chaos` run: (wall seconds, exit code, stderr)."""
    command = [str(BIN / "drill"), "chaos", PLAN, "--out", str(work / "out"), "--cab-log", str(work / "cab.jsonl")]
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600
    )
    return time.perf_counter() - started, done.returncode, done.stderr


def start_lab(work: Path, env: dict) -> tuple[subprocess.Popen, dict]:
    err = work / "lab.stderr"
    with err.open("w") as stderr:
        # its own session: a Ctrl-C here stops the benchmark, whose finally stops the lab
        lab = subprocess.Popen(
            [str(BIN / "drill"), "lab", "up"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    lines = []
    for line in lab.stdout:
        lines.append(line)
        if line.startswith("}"):
            return lab, json.loads("".join(lines))
    lab.wait(60)
    raise SystemExit(
        f"drill lab up exited {lab.returncode} without printing its endpoints:\n{tail(err.read_text(errors='replace'))}"
    )


def stop_lab(lab: subprocess.Popen) -> None:
    if lab.poll() is None:
        lab.send_signal(signal.SIGTERM)
        try:
            lab.wait(60)
        except subprocess.TimeoutExpired:
            print("drill lab up did not stop 60 s after SIGTERM; killed", file=sys.stderr)
            lab.kill()
            lab.wait()
    lab.stdout.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each tool (default 3)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not (BIN / "chaos").exists():
        print(
            f"{BIN / 'chaos'} is missing: install the bench extra: {sys.executable} -m pip install -e '.[test,bench]'",
            file=sys.stderr,
        )
        return 2

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt  # the finally below stops the lab

    signal.signal(signal.SIGTERM, on_sigterm)

    work = Path(tempfile.mkdtemp(prefix="chaos-vs-ctk-"))
    (work / "state").mkdir()
    # a registry of its own: `drill chaos` (lab: running) attaches to this lab, not to another one
    env = {**os.environ, "DRILL_STATE_DIR": str(work / "state")}
    lab, fault_url = None, None
    ctk: list[tuple[float, float, float]] = []
    drill: list[float] = []
    drill_failed: list[int] = []  # exit 1: the run went through, its verdict was FAIL
    drill_error = None  # could not run at all: (exit code, stderr)
    interrupted = False
    try:
        started = time.perf_counter()
        lab, manifest = start_lab(work, env)
        fault_url, api_url = manifest["endpoints"]["toxiproxy"], manifest["endpoints"]["api"]
        version = requests.get(f"{fault_url}/version", timeout=5).json().get("version")
        print(
            f"lab {manifest['lab_id']} up in {time.perf_counter() - started:.1f} s; fault server {fault_url} "
            f"({version}), API {api_url}"
        )
        for i in range(1, args.runs + 1):  # interleaved: drift hits both alike
            ctk.append(ctk_run(work / f"ctk-{i}", fault_url, api_url, env))
            print(
                f"  run {i}: {CTK:13} {ctk[-1][0]:6.2f} s  (journal duration {ctk[-1][1]:.2f} s, "
                f"GET /health through the proxy {ctk[-1][2]:.1f} ms)",
                flush=True,
            )
            if drill_error is None:
                (work / f"drill-{i}").mkdir()
                wall, code, stderr = drill_run(work / f"drill-{i}", env)
                if code in (0, 1):
                    drill.append(wall)
                    if code == 1:
                        drill_failed.append(i)
                    print(
                        f"  run {i}: {DRILL:13} {wall:6.2f} s  (verdict {'PASS' if code == 0 else 'FAIL'})", flush=True
                    )
                else:
                    drill_error = (code, stderr)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if fault_url is not None:
            try:
                if proxy_exists(fault_url):
                    requests.delete(f"{fault_url}/proxies/{PROXY}", timeout=5)
            except requests.RequestException as exc:
                print(f"could not check for a left-over {PROXY} proxy: {exc}", file=sys.stderr)
        if lab is not None:
            stop_lab(lab)
        shutil.rmtree(work, ignore_errors=True)
    if interrupted:
        print("interrupted: the lab is stopped, nothing measured", file=sys.stderr)
        return 130

    print(f"\none {LATENCY_MS} ms latency experiment against the embedded fault server, wall time of the whole command")
    print(f"{'tool':14} {'runs':>4} {'median s':>9} {'min s':>7} {'max s':>7}")
    rows = [(CTK, [r[0] for r in ctk]), (DRILL, drill)]
    for name, walls in rows:
        if walls:
            print(f"{name:14} {len(walls):>4} {statistics.median(walls):9.2f} {min(walls):7.2f} {max(walls):7.2f}")
        else:
            print(f"{name:14} {0:>4} {'-':>9} {'-':>7} {'-':>7}")
    print(
        f"{CTK}: the experiment itself (journal duration, median) {statistics.median(r[1] for r in ctk):.2f} s; "
        f"probe round trip median {statistics.median(r[2] for r in ctk):.1f} ms (>= {LATENCY_MS} ms required)"
    )
    if drill:
        print(
            f"ratio {DRILL} / {CTK} (medians): {statistics.median(drill) / statistics.median(r[0] for r in ctk):.2f}x"
        )
    else:
        code, stderr = drill_error
        print(
            f"{DRILL}: this half could not run (`drill chaos {PLAN}` exited {code}); no figure, no ratio. "
            f"Its stderr, last lines:\n{tail(stderr)}"
        )
    print("\nwhat each does in its measured time:")
    for name, does in DOES.items():
        print(textwrap.fill(f"{name}: {does}", 110, initial_indent="  ", subsequent_indent="    "))
    if drill_failed:
        print(f"{DRILL}: verdict FAIL in run(s) {drill_failed} (timed all the same)")
    return 0 if drill and not drill_failed else 1


if __name__ == "__main__":
    sys.exit(main())
