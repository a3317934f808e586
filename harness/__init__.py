"""Disaster-recovery drill harness: injects faults, measures RTO/RPO, reports to the CAB."""

__version__ = "0.1.0"
