"""Shared models, settings, database schema and safety policy."""
