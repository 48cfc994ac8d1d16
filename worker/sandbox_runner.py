"""The workflow sandbox, asking for each serialization context once between two activations.

Before it decodes an activation and after it encodes a completion, the SDK asks the workflow
instance which serialization context each payload sequence belongs to: six passes over every
activation and completion (temporalio 1.35), 81 lookups for an auto-approved ticket. (Only with a
payload codec or external storage configured: without either the passes are left out,
worker/payload_passes.py.) The sandboxed
instance answers each one by compiling and `exec`ing a snippet in the sandbox: 14.6 % of the
worker's Python time at full load (bench/notes.md, item 20).

An answer depends only on the command and on the workflow's pending commands, which change only
while workflow code runs, i.e. inside `activate`. So this runner's instances keep the SDK's answers,
computed the SDK's way (in the sandbox, under its restrictions: workflow code can run inside a
lookup, a red team showed), and forget them whenever the workflow runs, which also keeps a
long-lived workflow from collecting them. `tests/workflows/test_sandbox_runner.py` checks every
answer a ticket is given against a fresh one from the SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.converter import SerializationContext
from temporalio.converter._extstore import StorageDriverStoreContext
from temporalio.worker import _command_aware_visitor
from temporalio.worker._workflow_instance import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions
from temporalio.worker.workflow_sandbox._runner import _Instance

CommandInfo = _command_aware_visitor.CommandInfo
UNKNOWN = object()  # not remembered yet (None is an answer: no context)
Answer = TypeVar("Answer")


class RememberingContextInstance(_Instance):
    """A sandboxed workflow instance that asks the sandbox for each context once per activation."""

    def __init__(
        self, details: WorkflowInstanceDetails, runner_class: type[WorkflowRunner], restrictions: SandboxRestrictions
    ) -> None:
        self._contexts: dict[CommandInfo | None, SerializationContext | None] = {}
        self._store_contexts: dict[CommandInfo | None, StorageDriverStoreContext] = {}
        super().__init__(details, runner_class, restrictions)

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        try:
            return super().activate(act)
        finally:
            self._forget()  # the workflow ran: its pending commands may have changed

    def get_serialization_context(self, command_info: CommandInfo | None) -> SerializationContext | None:
        return _remembered(self._contexts, command_info, super().get_serialization_context)

    def get_external_store_context(self, command_info: CommandInfo | None) -> StorageDriverStoreContext:
        return _remembered(self._store_contexts, command_info, super().get_external_store_context)

    def _forget(self) -> None:
        self._contexts.clear()
        self._store_contexts.clear()


def _remembered(
    answers: dict[CommandInfo | None, Answer],
    command_info: CommandInfo | None,
    ask: Callable[[CommandInfo | None], Answer],
) -> Answer:
    """The remembered answer for `command_info`, else `ask`'s, remembered.

    One read of the dict, not a check and a read: on a deadlock the SDK encodes the failed task
    while the stuck activation's thread may still be running `_forget` (red team 11).
    """
    answer: object = answers.get(command_info, UNKNOWN)
    if answer is UNKNOWN:
        answer = answers[command_info] = ask(command_info)
    return cast(Answer, answer)


class RememberingContextSandboxRunner(SandboxedWorkflowRunner):
    """`SandboxedWorkflowRunner` whose instances are `RememberingContextInstance`s."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return RememberingContextInstance(det, self.runner_class, self.restrictions)
