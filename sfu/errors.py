"""The one error the media model raises: a request refused, with a code the caller gets back."""

from __future__ import annotations


class EngineError(Exception):
    """A request the engine refuses; code and reason go back to the caller."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
