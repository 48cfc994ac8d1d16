"""The payloads Slack sends back to the listeners, as models.

They validate Slack's interaction payloads at the edge: a payload that does not fit is
unhandled (HTTP 400) and starts nothing. The ids and button values they carry are in
`rendering.slack_ids`, shared with the messages that carry them.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field

from rendering.slack_ids import (
    MAX_BUTTON_VALUE,
    MAX_PRIVATE_METADATA,
    MAX_REASON,
    REASON_BLOCK_ID,
    REASON_INPUT_ACTION_ID,
    REPLAN_BLOCK_ID,
    REPLAN_INPUT_ACTION_ID,
    REPLAN_OPTION,
    ButtonValue,
    RejectModalMetadata,
    SlackPayload,
    UndoValue,
)


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


class Click(SlackPayload):
    """A `block_actions` payload for one of our buttons: who clicked which, where."""

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
    def channel_id(self) -> str | None:
        return self.channel.id if self.channel else self.container.channel_id

    @property
    def value(self) -> object:
        """The button's value, decoded by the subclass for its button (a bad value raises)."""
        return self.action.value

    @classmethod
    def parse(cls, body: dict[str, object]) -> Self:
        """Validate the payload including the button value, so a bad value is refused as a whole."""
        click = cls.model_validate(body)
        click.value  # noqa: B018 - decoding is the validation
        return click


class ButtonClick(Click):
    """A click on one of our Approve / Reject buttons."""

    @property
    def value(self) -> ButtonValue:
        return ButtonValue.decode(self.action.value)


class UndoClick(Click):
    """A click on a done ticket's Undo button."""

    @property
    def value(self) -> UndoValue:
        return UndoValue.decode(self.action.value)


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
