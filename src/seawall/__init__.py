"""Seawall: a self-hosted production gateway and control plane for LLM applications."""

__version__ = "0.1.0"
