"""Prompt-injection defences: input checks, output checks, strikes, review and revert."""
