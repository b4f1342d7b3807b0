"""The JSON body of every 4xx/5xx answer Tocsin's HTTP APIs give."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.alert import AlertProblem

__all__ = ["ErrorBody"]


class ErrorBody(BaseModel):
    """An error answer: a summary, each problem with its JSON Pointer, and what was accepted."""

    model_config = ConfigDict(frozen=True)

    error: str
    errors: list[AlertProblem] = Field(default_factory=list)
    accepted: int | None = Field(
        default=None, description="alerts of this request that were accepted despite the errors"
    )
