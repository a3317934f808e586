"""Ad hoc chaos runs: `drill chaos PLAN` (harness.chaos.runner) and `drill halt`."""
