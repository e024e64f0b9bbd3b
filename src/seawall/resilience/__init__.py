"""Failure handling: retries and their budget, breakers, rate budgets, balancing, admission."""
