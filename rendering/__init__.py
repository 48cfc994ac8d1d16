"""Tickets put into words and messages, for the bot, the worker's notifier and the CLI alike.

`words` spells plans, filters, values and decisions once; `slack` builds Block Kit messages
from them; `slack_ids` holds the ids and button values those messages carry. Nothing here
imports `bot`, Starlette or Bolt, so the worker can render without loading the web stack.
"""
