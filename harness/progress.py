"""Progress lines on stderr while a drill runs: one per phase (lab up, steady state, inject,
recover, verify, outputs) with the time since the run began; coloured only on a terminal;
silent with --quiet. stdout stays for what scripts read (the report path, or --json)."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

PHASES = ("lab", "scenario", "steady state", "inject", "recover", "verify", "outputs")
COLOURS = {
    "lab": "36",
    "scenario": "1",
    "steady state": "32",
    "inject": "31",
    "recover": "33",
    "verify": "35",
    "outputs": "36",
}
# the lab's and the journal's events that are worth a line, and the phase each belongs to
EVENT_PHASES = {
    "inject": ("inject", "{}"),
    "not_injected": ("inject", "NOT INJECTED {} (refused or unreachable)"),
    "heal": ("recover", "healed {}"),
    "heal_failed": ("recover", "HEAL FAILED {}"),
    "detect": ("recover", "failure detected: {}"),
    "promote": ("recover", "promoted {}"),
    "reconnect": ("recover", "reconnected {}"),
    "failback": ("recover", "failed back to {}"),
    "restart": ("recover", "restarted {}"),
}


class Progress:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False, colour: bool | None = None):
        if stream is None and not quiet:
            # a copy of fd 2 made now: the scenarios run inside pytest, which captures fd 2
            sys.stderr.flush()
            try:
                stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, closefd=True)
            except (OSError, ValueError, AttributeError):  # stderr is no file (embedded, captured)
                stream = None
        self.stream = stream or sys.stderr
        self.quiet = quiet
        if colour is None:
            colour = hasattr(self.stream, "isatty") and self.stream.isatty() and "NO_COLOR" not in os.environ
        self.colour = colour
        self.started = time.monotonic()
        self._lock = threading.Lock()  # the failover controller reports from its own thread

    def __call__(self, phase: str, text: str = "") -> None:
        if self.quiet:
            return
        label = f"{phase:<12}"
        if self.colour:
            label = f"\033[{COLOURS.get(phase, '0')}m{label}\033[0m"
        line = f"drill: [{time.monotonic() - self.started:7.1f} s] {label} {text}".rstrip()
        with self._lock:
            print(line, file=self.stream, flush=True)

    def event(self, kind: str, name: str) -> None:
        """A recorded event, when it marks a phase (a fault injected, healed, a failover step)."""
        if kind in EVENT_PHASES:
            phase, words = EVENT_PHASES[kind]
            self(phase, words.format(name))
