"""Temporal activities: everything that touches the world, one module per concern."""
