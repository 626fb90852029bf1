"""Observability: Prometheus metrics (metrics.py), the per-request middleware (middleware.py: request id, metrics,
the JSON access log) and JSON logging (logs.py). Issue 23; records 0242 and 0243."""
