"""Metrics, traces and the search attributes' registration: what operators see of a running agent-ticket.

Kept import-light: workflow code reads `core.observability.names` through the sandbox, and
the OpenTelemetry packages are an optional extra, imported only when tracing is configured.
"""
