"""Tenants, API keys, limits, prices and budgets: who may call, how much, at what cost."""
