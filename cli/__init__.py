"""The `agent-ticket` command line."""
