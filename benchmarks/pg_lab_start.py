"""Benchmark: cold start of the embedded PostgreSQL lab (primary + sync + async replica) and promote time."""

from __future__ import annotations

import argparse
import statistics
import time

import psycopg

from harness.lab.postgres import PgCluster, wait_until


def one_run(use_template: bool) -> dict[str, float]:
    """Times of one lab life: start, kill + promote, first write on the new primary, down."""
    times: dict[str, float] = {}
    t0 = time.monotonic()
    lab = PgCluster(use_template=use_template).with_replica("replica", synchronous=True).with_replica("analytics")
    with lab:
        times["start"] = time.monotonic() - t0
        t = time.monotonic()
        lab["primary"].kill()
        times["kill"] = time.monotonic() - t
        t = time.monotonic()
        lab["replica"].promote()
        times["promote"] = time.monotonic() - t

        def write() -> bool:
            with psycopg.connect(lab["replica"].dsn, autocommit=True) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS bench (v int)")
                conn.execute("INSERT INTO bench VALUES (1)")
            return True

        wait_until(write, 30, "first write on the promoted node")
        times["kill_to_first_write"] = time.monotonic() - t + times["kill"]
        t = time.monotonic()
    times["down"] = time.monotonic() - t
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"pg_lab_start: primary + 1 sync replica + 1 async replica, median (min-max) of {args.runs} runs, seconds")
    for use_template in (True, False):
        runs = [one_run(use_template) for _ in range(args.runs)]
        label = "initdb template copied" if use_template else "initdb every time"
        for key in runs[0]:
            values = [r[key] for r in runs]
            print(f"  [{label}] {key:<20} {statistics.median(values):6.3f} ({min(values):.3f}-{max(values):.3f})")


if __name__ == "__main__":
    main()
