"""The ids that tie Slack messages to listeners, and what a message's buttons and modal carry.

The Block Kit messages (`rendering.slack`) and the bot's listeners both import these, so an id
is spelled in one place. Only pydantic: the worker's notifier renders buttons too.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

COMMAND = "/agent-ticket"

APPROVE_ACTION_ID = "ticket_approve"
REJECT_ACTION_ID = "ticket_reject"
DASHBOARD_ACTION_ID = "ticket_dashboard"
UNDO_ACTION_ID = "ticket_undo"

REJECT_MODAL_CALLBACK_ID = "ticket_reject_modal"
REASON_BLOCK_ID = "reject_reason"
REASON_INPUT_ACTION_ID = "reject_reason_input"
REPLAN_BLOCK_ID = "reject_replan"
REPLAN_INPUT_ACTION_ID = "reject_replan_input"
REPLAN_OPTION = "replan"

MAX_BUTTON_VALUE = 2000
MAX_PRIVATE_METADATA = 3000
MAX_REASON = 2000


class SlackPayload(BaseModel):
    """Slack adds fields over time; we read the ones we need and ignore the rest."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class ButtonValue(SlackPayload):
    """What an Approve or Reject button carries: which ticket, which approval request, which plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workflow_id: str = Field(min_length=1, max_length=100)
    request_id: str = Field(min_length=1, max_length=100)
    plan_hash: str = Field(min_length=1, max_length=100)

    def encode(self) -> str:
        value = self.model_dump_json()
        if len(value) > MAX_BUTTON_VALUE:  # pragma: no cover - field limits keep it far below
            raise ValueError("button value is longer than Slack allows")
        return value

    @classmethod
    def decode(cls, value: str) -> ButtonValue:
        return cls.model_validate_json(value)


class UndoValue(SlackPayload):
    """What a done ticket's Undo button carries: which ticket to revert (the workflow judges the rest)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workflow_id: str = Field(min_length=1, max_length=100)

    def encode(self) -> str:
        return self.model_dump_json()

    @classmethod
    def decode(cls, value: str) -> UndoValue:
        return cls.model_validate_json(value)


class RejectModalMetadata(SlackPayload):
    """Carried in the reject modal's `private_metadata`: the button's value and where to answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: ButtonValue
    channel: str | None = Field(default=None, max_length=200)

    def encode(self) -> str:
        return self.model_dump_json()
