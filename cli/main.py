"""`agent-ticket`: run the product (`dev`, `worker`, `bot`, `init-db`) and work tickets from a terminal.

This module only assembles the app: every command lives in a module of its own, and this is
the one place that registers commands and sub-apps (a new sub-app is one `app.add_typer` line
below). Every command validates its input before it touches anything, so a bad input prints
a clear message and starts nothing (exit 2); failures a user can act on print one message
and exit 1 instead of a traceback.
"""

from __future__ import annotations

from cli import accounts, decide, list_command, revert_command, servers, tickets_commands
from cli.app import new_app
from cli.mcp_command import mcp_app
from cli.sessions import sessions_app

app = new_app()

# Tickets
app.command()(tickets_commands.submit)
app.command()(tickets_commands.show)
app.command(name="list")(list_command.list_tickets)
app.command()(decide.approve)
app.command()(decide.reject)
app.command()(revert_command.revert)

# Running the product
app.command()(servers.dev)
app.command()(servers.worker)
app.command()(servers.bot)
app.command(name="init-db")(servers.init_db)
app.command(name="reset-demo")(servers.reset_demo)

# Dashboard accounts
app.command(name="hash-password")(accounts.hash_password_command)

# Sub-apps: one `app.add_typer(<sub-app>, name="<name>")` line each.
app.add_typer(mcp_app, name="mcp")
app.add_typer(sessions_app, name="sessions")


if __name__ == "__main__":
    app()
