"""Benchmarks of agent-ticket: `make bench` runs them and writes docs/benchmarks.md."""
