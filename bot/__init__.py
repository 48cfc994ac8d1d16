"""The bot's ASGI app: Slack listeners, the approvals dashboard, health and metrics."""
