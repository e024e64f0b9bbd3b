"""The control plane: keys, and later budgets, registry and rollouts."""
