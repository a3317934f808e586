"""The reference Control Plane under drill: HTTP API, PostgreSQL event store, S3 evidence store.

The harness never imports this package; it runs it as processes (``python -m controlplane``).
"""

__version__ = "1.0.0"
