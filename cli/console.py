"""Where the CLI writes: results to stdout, messages and logs to stderr, errors as one line.

Kept in one place so every command prints the same way, and so `--json` output on stdout is
never mixed with progress or log lines (those go to stderr).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from cli.errors import EXIT_FAILED
from core.logs import json_handler, use_plain_sdk_messages

console = Console()
errors = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    errors.print(f"[bold red]Error:[/bold red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    """A result for scripts: plain JSON on stdout, no colour or wrapping."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def validation_message(error: ValidationError, names: dict[str, str]) -> str:
    """One line per problem, naming the argument or option as the user typed it."""
    lines = []
    for issue in error.errors():
        field = str(issue["loc"][0]) if issue["loc"] else ""
        message = str(issue["msg"]).removeprefix("Value error, ")
        lines.append(f"{names.get(field, field)}: {message}")
    return "; ".join(lines)


def configure_logging(level: int, log_format: str = "text") -> None:
    """Logs go to stderr (JSON lines with LOG_FORMAT=json, else rich on a terminal and plain lines otherwise);
    the SDK's own chatter stays at warnings.

    Leaves logging alone when the host process (a test runner, an embedding app) configured it.
    """
    if logging.getLogger().handlers:
        return
    handler: logging.Handler
    if log_format == "json":
        handler = json_handler(sys.stderr)
        use_plain_sdk_messages()
    elif errors.is_terminal:
        handler = RichHandler(console=errors, show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("temporalio").setLevel(max(level, logging.WARNING))
