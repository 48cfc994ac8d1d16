"""What a dashboard request can go wrong with, as exceptions that carry the answer for the person.

Handlers raise them; `pages.py` and `live.py` turn them into an HTML page or a JSON body, so each
handler reads as the happy path plus the checks it makes.
"""

from __future__ import annotations


class Problem(Exception):
    """A refusal with an HTTP status and a message meant for the person who asked."""

    status_code = 400
    title = "Bad request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(Problem):
    status_code = 400
    title = "Something is missing"


class TooLarge(Problem):
    status_code = 413
    title = "Too large"


class SignInRequired(Problem):
    status_code = 401
    title = "Sign in required"

    def __init__(self, message: str = "Sign in to use the dashboard.", *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


class Forbidden(Problem):
    status_code = 403
    title = "Not allowed"


class NotFound(Problem):
    status_code = 404
    title = "Not found"


class Refused(Problem):
    """The approval rules said no (stale plan, own ticket, already decided): 409 Conflict."""

    status_code = 409
    title = "Decision refused"


class Unavailable(Problem):
    status_code = 503
    title = "Temporal is not answering"
