"""The restore drill's core (issue 26): verify, restore the newest valid backup into a scratch
PostgreSQL, time each phase; and pgBackRest pointed read-only at any deployment's repository."""

from .newest import Candidate, Restored, RestoreOutcome, Timings, restore_newest_valid, verify_reasons
from .tool import (
    READ_ONLY_COMMANDS,
    ReadOnlyPgBackRest,
    ReadOnlyRefused,
    RestoreError,
    RestoreInvalid,
    RestoreUnreachable,
    ScratchHost,
)

__all__ = [
    "READ_ONLY_COMMANDS",
    "Candidate",
    "ReadOnlyPgBackRest",
    "ReadOnlyRefused",
    "RestoreError",
    "RestoreInvalid",
    "RestoreOutcome",
    "RestoreUnreachable",
    "Restored",
    "ScratchHost",
    "Timings",
    "restore_newest_valid",
    "verify_reasons",
]
