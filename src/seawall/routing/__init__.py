"""Routing policies: which public model answers a request sent to a router model."""
