"""The quarterly drill schedule: a daemon on APScheduler 3.x (harness.schedule.daemon)."""
