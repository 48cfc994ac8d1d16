"""The LLM planner: OpenAI (or any compatible server) with strict structured outputs.

Temporal owns retries, so this module decides only *whether* a failure is worth
retrying and says so with `ApplicationError`: rate limits (honouring
Retry-After), 5xx, time-outs and dropped connections are retryable; refusals,
truncated answers, rejected requests (400/401/403/404/422) and answers that stay
invalid after one re-ask are not, because trying again would give the same result.
"""

from __future__ import annotations

import email.utils
import logging
import math
import time
from collections.abc import Mapping
from datetime import UTC, timedelta

from openai import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncOpenAI,
    RateLimitError,
)
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from temporalio.exceptions import ApplicationError

from activities.llm_prompt import initial_messages, plan_from_answer, reask_messages, response_format
from core.models import Plan, PlanTicketInput
from core.names import short_id_from, ticket_label

logger = logging.getLogger(__name__)

MAX_RETRY_AFTER = timedelta(minutes=10)
RETRYABLE_STATUSES = frozenset({408, 409, 429})

# ApplicationError types, so a workflow or an operator can tell failures apart.
ERROR_RATE_LIMITED = "LLMRateLimited"
ERROR_UNAVAILABLE = "LLMUnavailable"
ERROR_REQUEST_REJECTED = "LLMRequestRejected"
ERROR_REFUSED = "LLMRefused"
ERROR_TRUNCATED = "LLMOutputTruncated"
ERROR_CONTENT_FILTERED = "LLMContentFiltered"
ERROR_INVALID_OUTPUT = "LLMInvalidOutput"


class OpenAIPlanner:
    """Plans a ticket with one chat completion, re-asking once if the answer does not validate."""

    def __init__(self, client: AsyncOpenAI, model: str, *, max_completion_tokens: int = 4096) -> None:
        # Whatever the caller built, this planner never lets the client retry on its own.
        self._client = client if client.max_retries == 0 else client.with_options(max_retries=0)
        self._model = model
        self._max_completion_tokens = max_completion_tokens

    @property
    def name(self) -> str:
        return f"openai:{self._model}"

    async def plan(self, input: PlanTicketInput) -> Plan:
        label = ticket_label(short_id_from(input.ticket_id))
        messages = initial_messages(input)
        answer = await self._ask(label, messages)
        try:
            return plan_from_answer(answer, self.name)
        except ValueError as problem:
            logger.warning("%s: LLM answer did not validate, asking again once: %s", label, problem)
            messages = [*messages, *reask_messages(answer, str(problem))]
        answer = await self._ask(label, messages)
        try:
            return plan_from_answer(answer, self.name)
        except ValueError as problem:
            raise ApplicationError(
                f"{label}: the LLM's answer was still invalid after one re-ask: {problem}",
                type=ERROR_INVALID_OUTPUT,
                non_retryable=True,
            ) from None

    async def close(self) -> None:
        await self._client.close()

    async def _ask(self, label: str, messages: list[ChatCompletionMessageParam]) -> str:
        """One chat completion; returns the answer's text or raises a classified ApplicationError."""
        started = time.monotonic()
        try:
            completion = await self._client.chat.completions.create(
                model=self._model,
                messages=messages,
                response_format=response_format(),
                max_completion_tokens=self._max_completion_tokens,
            )
        except APIStatusError as error:
            raise classify_status_error(label, error) from error
        except APITimeoutError as error:
            raise ApplicationError(
                f"{label}: the LLM did not answer within the client time-out", type=ERROR_UNAVAILABLE
            ) from error
        except APIConnectionError as error:
            raise ApplicationError(f"{label}: could not reach the LLM: {error}", type=ERROR_UNAVAILABLE) from error
        logger.info(
            "%s: LLM answered in %.1f s (%s tokens)",
            label,
            time.monotonic() - started,
            completion.usage.total_tokens if completion.usage else "?",
        )
        return answer_text(label, completion)


def answer_text(label: str, completion: ChatCompletion) -> str:
    """The message content, or a non-retryable error for refusals, truncation and filtering."""
    if not completion.choices:
        return ""
    choice = completion.choices[0]
    if choice.message.refusal:
        raise ApplicationError(
            f"{label}: the LLM refused to plan this ticket: {choice.message.refusal}",
            type=ERROR_REFUSED,
            non_retryable=True,
        )
    if choice.finish_reason == "length":
        raise ApplicationError(
            f"{label}: the LLM's answer was cut off at its output-token limit, so the plan is incomplete",
            type=ERROR_TRUNCATED,
            non_retryable=True,
        )
    if choice.finish_reason == "content_filter":
        raise ApplicationError(
            f"{label}: the LLM provider's content filter stopped the answer",
            type=ERROR_CONTENT_FILTERED,
            non_retryable=True,
        )
    return choice.message.content or ""


def classify_status_error(label: str, error: APIStatusError) -> ApplicationError:
    """Map an HTTP error answer to a retryable or non-retryable ApplicationError."""
    status = error.status_code
    detail = f"{label}: the LLM API answered {status}: {error.message}"
    if isinstance(error, RateLimitError) or status == 429:
        if error.code == "insufficient_quota":
            # OpenAI says 429 for an exhausted quota too; waiting will not refill it.
            return ApplicationError(detail, type=ERROR_REQUEST_REJECTED, non_retryable=True)
        return ApplicationError(detail, type=ERROR_RATE_LIMITED, next_retry_delay=retry_after(error.response.headers))
    if status >= 500 or status in RETRYABLE_STATUSES:
        return ApplicationError(detail, type=ERROR_UNAVAILABLE)
    return ApplicationError(detail, type=ERROR_REQUEST_REJECTED, non_retryable=True)


def retry_after(headers: Mapping[str, str]) -> timedelta | None:
    """The server's requested wait: `retry-after-ms`, else `retry-after` in seconds or as an HTTP-date."""
    seconds: float | None = None
    milliseconds = headers.get("retry-after-ms")
    value = headers.get("retry-after")
    if milliseconds is not None:
        seconds = _number(milliseconds, 1000)
    if seconds is None and value is not None:
        seconds = _number(value, 1)
        if seconds is None:
            seconds = _seconds_until(value)
    if seconds is None or seconds <= 0:
        return None
    return min(timedelta(seconds=seconds), MAX_RETRY_AFTER)


def _number(value: str, divisor: int) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number / divisor if math.isfinite(number) else None


def _seconds_until(http_date: str) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() - time.time()
