"""Benchmarks: effectiveness, detection latency, overhead and scrape cost (see bench/RESULTS.md)."""
