"""Telemetry sinks beside the Prometheus metrics: OpenTelemetry traces (`traces.py`)."""
