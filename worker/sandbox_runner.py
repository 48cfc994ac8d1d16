"""The workflow sandbox, without compiling and `exec`ing a snippet for every payload sequence.

Before it decodes an activation and after it encodes a completion, the SDK asks the workflow
instance which serialization context each payload sequence belongs to (six passes over every
activation and completion, temporalio 1.35). The sandboxed instance answers each time by compiling
a two-line snippet and `exec`ing it in the sandbox, with the sandbox's import hooks and restricted
builtins applied around it: 14.6 % of the worker's Python time at full load (bench/notes.md,
item 20), even with no codec and no external storage, where the answer changes nothing.

This runner makes the same call to the same in-sandbox object under the same restrictions (the
importer applied, the run-time flag and the in-sandbox flag set, the thread recorded for deadlock
detection), without the compile and the `exec`. The restrictions matter: the lookup reads values
the workflow handed to its commands (an activity's task queue, a child's id), and a workflow's own
`str` subclass there runs workflow code inside the lookup, which must be refused what workflow code
is refused anywhere (a red team's case, kept in `tests/workflows/test_sandbox_runner.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import temporalio.converter
import temporalio.workflow
from temporalio.converter._extstore import StorageDriverStoreContext
from temporalio.worker import _command_aware_visitor
from temporalio.worker._workflow_instance import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _Instance

# The name the SDK's `_Instance` gives its in-sandbox object in the sandbox's globals.
IN_SANDBOX_NAME = "__temporal_in_sandbox"

CommandInfo = _command_aware_visitor.CommandInfo
Answer = TypeVar("Answer")


class DirectContextInstance(_Instance):
    """A sandboxed workflow instance that answers context lookups in the sandbox, without `exec`."""

    def get_serialization_context(
        self, command_info: CommandInfo | None
    ) -> temporalio.converter.SerializationContext | None:
        return self._in_sandbox(lambda inside: inside.get_serialization_context(command_info))

    def get_external_store_context(self, command_info: CommandInfo | None) -> StorageDriverStoreContext:
        return self._in_sandbox(lambda inside: inside.get_external_store_context(command_info))

    def _in_sandbox(self, call: Callable[[Any], Answer]) -> Answer:
        """`call(in-sandbox object)` as `_Instance._run_code` would run it, minus compiling a snippet."""
        inside = self.globals_and_locals[IN_SANDBOX_NAME]
        self.importer.restriction_context.is_runtime = True
        temporalio.workflow.unsafe._set_in_sandbox(True)
        self._current_thread_id = threading.get_ident()
        try:
            with self.importer.applied():
                return call(inside)
        finally:
            self._current_thread_id = None
            temporalio.workflow.unsafe._set_in_sandbox(False)
            self.importer.restriction_context.is_runtime = False


class DirectContextSandboxRunner(SandboxedWorkflowRunner):
    """`SandboxedWorkflowRunner` whose instances are `DirectContextInstance`s."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return DirectContextInstance(det, self.runner_class, self.restrictions)
