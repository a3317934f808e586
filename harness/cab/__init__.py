"""The CAB ledger: the keyed, hash-chained log of drills, schedule and report events (ledger)."""
