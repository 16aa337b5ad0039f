"""Metrics (Prometheus) and structured logs (structlog): definitions, exposition, request ids, redaction."""
