"""The `agent-ticket` Typer app itself: how it starts and leaves, and how its help reads.

Commands live in modules of their own and are registered in `cli/main.py`, the one place that
lists them (and the sub-apps).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import typer
from typer.core import TyperOption

from cli.console import errors
from cli.errors import EXIT_FAILED

_display_type_rich = TyperOption.display_type_rich


def _no_type_for_flags(self: TyperOption, ctx: Any) -> str | None:
    return None if self.is_flag else _display_type_rich(self, ctx)


def hide_flag_types() -> None:
    """Help shows no `<bool>` after flags such as `--wait` and `--help`: they take no value.

    Typer's rich help prints every option's type, flags included; this keeps it for options
    that take a value. Applies to every command and sub-app of the process.
    """
    TyperOption.display_type_rich = _no_type_for_flags  # type: ignore[method-assign]


class AgentTicketApp(typer.Typer):
    """The console script: leaves through `os._exit` after flushing.

    The Temporal SDK's Rust bridge can abort the interpreter during its own teardown
    (sdk-python #300), which would turn a command that succeeded into exit 134.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        code = 0
        try:
            super().__call__(*args, **kwargs)
        except SystemExit as exit_:
            if isinstance(exit_.code, int) or exit_.code is None:
                code = exit_.code or 0
            else:
                errors.print(str(exit_.code))
                code = EXIT_FAILED
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def new_app() -> AgentTicketApp:
    hide_flag_types()
    return AgentTicketApp(
        name="agent-ticket",
        help="Chat-ops approvals for AI agents that change production data, on Temporal.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
    )
