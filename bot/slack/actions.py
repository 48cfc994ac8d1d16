"""The ids that tie Slack messages to listeners, and the payloads Slack sends back, as models.

Block Kit rendering (`bot/blocks.py`) and the listeners both import these constants, so an
id is spelled in one place. The models validate Slack's interaction payloads at the edge:
a payload that does not fit is unhandled (HTTP 400) and starts nothing.

This module imports only pydantic and `core`: the worker's notifier renders buttons too.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

COMMAND = "/agent-ticket"

APPROVE_ACTION_ID = "ticket_approve"
REJECT_ACTION_ID = "ticket_reject"
DASHBOARD_ACTION_ID = "ticket_dashboard"

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


class RejectModalMetadata(SlackPayload):
    """Carried in the reject modal's `private_metadata`: the button's value and where to answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: ButtonValue
    channel: str | None = Field(default=None, max_length=200)

    def encode(self) -> str:
        return self.model_dump_json()


class SlackUser(SlackPayload):
    id: str = Field(min_length=1, max_length=50)


class SlackChannel(SlackPayload):
    id: str = Field(min_length=1, max_length=50)


class SlackTeam(SlackPayload):
    id: str = Field(min_length=1, max_length=50)


class ClickedAction(SlackPayload):
    action_id: str
    value: str = Field(max_length=MAX_BUTTON_VALUE)


class ActionContainer(SlackPayload):
    message_ts: str | None = None
    channel_id: str | None = None


class ButtonClick(SlackPayload):
    """A `block_actions` payload for one of our Approve / Reject buttons."""

    type: str = Field(pattern="^block_actions$")
    user: SlackUser
    team: SlackTeam | None = None
    channel: SlackChannel | None = None
    container: ActionContainer = Field(default_factory=ActionContainer)
    trigger_id: str = Field(min_length=1)
    actions: list[ClickedAction] = Field(min_length=1, max_length=1)

    @property
    def action(self) -> ClickedAction:
        return self.actions[0]

    @property
    def value(self) -> ButtonValue:
        return ButtonValue.decode(self.action.value)

    @property
    def channel_id(self) -> str | None:
        return self.channel.id if self.channel else self.container.channel_id

    @classmethod
    def parse(cls, body: dict[str, object]) -> ButtonClick:
        """Validate the payload including the button value, so a bad value is refused as a whole."""
        click = cls.model_validate(body)
        click.value  # noqa: B018 - decoding is the validation
        return click


class SelectedOption(SlackPayload):
    value: str


class InputState(SlackPayload):
    """One input's state in a submitted view: typed text or ticked checkboxes."""

    type: str
    value: str | None = Field(default=None, max_length=MAX_REASON)
    selected_options: list[SelectedOption] = Field(default_factory=list)


class ViewState(SlackPayload):
    values: dict[str, dict[str, InputState]] = Field(default_factory=dict)


class SubmittedView(SlackPayload):
    callback_id: str
    private_metadata: str = Field(max_length=MAX_PRIVATE_METADATA)
    state: ViewState = Field(default_factory=ViewState)


class RejectSubmission(SlackPayload):
    """A `view_submission` of the reject modal: who, which request, and the reason they typed."""

    type: str = Field(pattern="^view_submission$")
    user: SlackUser
    view: SubmittedView

    @property
    def metadata(self) -> RejectModalMetadata:
        return RejectModalMetadata.model_validate_json(self.view.private_metadata)

    @property
    def reason(self) -> str:
        field = self.view.state.values.get(REASON_BLOCK_ID, {}).get(REASON_INPUT_ACTION_ID)
        return (field.value or "").strip() if field else ""

    @property
    def replan(self) -> bool:
        """Whether the rejecter asked for a new plan, with their reason as the planner's feedback."""
        field = self.view.state.values.get(REPLAN_BLOCK_ID, {}).get(REPLAN_INPUT_ACTION_ID)
        return field is not None and any(option.value == REPLAN_OPTION for option in field.selected_options)

    @classmethod
    def parse(cls, body: dict[str, object]) -> RejectSubmission:
        """Validate the payload including the metadata; an empty reason is the listener's to answer."""
        submission = cls.model_validate(body)
        submission.metadata  # noqa: B018 - decoding is the validation
        return submission


def fits(parse: type[ButtonClick] | type[RejectSubmission], body: dict[str, object]) -> bool:
    """Whether `body` parses; used as a Bolt matcher so misfits stay unhandled (HTTP 400)."""
    try:
        parse.parse(body)
    except ValueError:  # pydantic's ValidationError and json's JSONDecodeError are ValueErrors
        return False
    return True
