"""The base of every shared model, and the value types plans and rows are made of.

Every value that crosses a Temporal boundary is a `Model`, so the pydantic data converter
can check it on the way in and on the way out. New fields always get defaults: running
workflow histories must keep decoding.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"

Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
Scalar = str | int | float | bool | None


class Model(BaseModel):
    """Base for every shared model: unknown fields are refused, values are checked."""

    model_config = ConfigDict(extra="forbid", frozen=False)
