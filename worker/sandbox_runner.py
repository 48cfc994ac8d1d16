"""The workflow sandbox, without its per-payload detour for serialization contexts.

Before it decodes an activation and after it encodes a completion, the SDK asks the workflow
instance which serialization context each payload sequence belongs to (six passes over every
activation and completion, temporalio 1.35). The sandboxed instance answers by compiling and
`exec`ing a two-line snippet inside the sandbox, with the sandbox's import hooks applied around it,
for every sequence, even with no codec and no external storage, where the answer changes nothing:
14.6 % of the worker's Python time at full load (bench/notes.md, item 20).

The answer is a lookup in the instance's pending commands, made by the SDK's own code, which imports
nothing and calls no workflow code, so nothing the sandbox guards against can happen in it. This
runner asks the in-sandbox object directly. Workflow code (activations) still runs through the
sandbox exactly as before, with its restrictions. `tests/worker/test_sandbox_runner.py` checks that
the answers are the SDK's own for every kind of command a ticket issues, and fails if the SDK's
internals it relies on move.
"""

from __future__ import annotations

from typing import Any

import temporalio.converter
from temporalio.converter._extstore import StorageDriverStoreContext
from temporalio.worker import _command_aware_visitor
from temporalio.worker._workflow_instance import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _Instance

# The name the SDK's `_Instance` gives its in-sandbox object in the sandbox's globals.
IN_SANDBOX_NAME = "__temporal_in_sandbox"

CommandInfo = _command_aware_visitor.CommandInfo


class DirectContextInstance(_Instance):
    """A sandboxed workflow instance that answers serialization-context lookups without `exec`."""

    def _in_sandbox(self) -> Any:
        return self.globals_and_locals[IN_SANDBOX_NAME]

    def get_serialization_context(
        self, command_info: CommandInfo | None
    ) -> temporalio.converter.SerializationContext | None:
        return self._in_sandbox().get_serialization_context(command_info)  # type: ignore[no-any-return]

    def get_external_store_context(self, command_info: CommandInfo | None) -> StorageDriverStoreContext:
        return self._in_sandbox().get_external_store_context(command_info)  # type: ignore[no-any-return]


class DirectContextSandboxRunner(SandboxedWorkflowRunner):
    """`SandboxedWorkflowRunner` whose instances are `DirectContextInstance`s."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return DirectContextInstance(det, self.runner_class, self.restrictions)
