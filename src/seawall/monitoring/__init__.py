"""Monitoring: Prometheus metrics (and, later, traces and quality signals)."""
