"""Fakes of external services as real HTTP servers on 127.0.0.1, speaking the real protocol."""
