"""Monitoring: metrics, state gauges, answer quality, traces, JSON logs and redaction."""
