"""`agent-ticket mcp`: serve the MCP door over stdio, and `agent-ticket mcp token NAME` to admit an agent."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from cli.errors import EXIT_BAD_INPUT

mcp_app = typer.Typer(
    help="The MCP door for AI agents: over stdio here, over HTTP at /mcp on the bot. See docs/mcp.md.",
    add_completion=False,
)


@mcp_app.callback(invoke_without_command=True)
def serve(ctx: typer.Context) -> None:
    """Serve MCP over stdio as the agent whose token is in MCP_TOKEN (an MCP client starts this)."""
    if ctx.invoked_subcommand is not None:
        return
    from cli.console import configure_logging, fail
    from cli.session import run, settings_or_exit
    from mcp_door.stdio import McpConfigError, serve_stdio

    settings = settings_or_exit()
    configure_logging(logging.INFO, settings.log_format)  # to stderr: stdout is the protocol
    try:
        run(settings, serve_stdio(settings), process="mcp")
    except McpConfigError as error:
        fail(str(error), EXIT_BAD_INPUT)


@mcp_app.command()
def token(name: Annotated[str, typer.Argument(help="The agent's name, e.g. deploy-bot.")]) -> None:
    """Make a bearer token for agent NAME; print it once, and the MCP_AGENTS entry (with its hash only)."""
    from cli.console import console, fail
    from mcp_door.identity import new_token

    try:
        made = new_token(name)
    except ValueError as error:
        fail(str(error), EXIT_BAD_INPUT)
    console.print(f"Token for agent {name} (shown once; give it to the agent as its bearer token or MCP_TOKEN):")
    console.print(made.token, highlight=False, soft_wrap=True)
    console.print("Add to MCP_AGENTS (comma separated with any others):")
    console.print(made.entry, highlight=False, soft_wrap=True)
