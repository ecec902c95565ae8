"""Telemetry beside the Prometheus metrics contract: OpenTelemetry traces (`traces.py`) and the
prometheus multiprocess directory as the worker's main process keeps it (`multiproc.py`). The
metrics contract (`realtime_supervisor.metrics`) and the HTTP service
(`realtime_supervisor.service`) keep their import paths."""
