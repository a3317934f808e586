"""Moved to harness.cab.ledger: this name stays only until the last importer is updated."""

from harness.cab.ledger import *  # noqa: F401,F403
from harness.cab.ledger import CabKey, append_cab_log, drill_record, load_key, verified_entries  # noqa: F401
