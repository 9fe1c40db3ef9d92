"""The one exception type for mistakes a user can fix: a bad config, file, value or invocation."""

from __future__ import annotations

from pathlib import Path


class L1mlError(Exception):
    """A user-facing error. The CLI prints its message on one line and exits non-zero, without a traceback."""

    def __init__(self, message: str, *, path: str | Path | None = None, key: str | None = None, value: object = None):
        self.path = str(path) if path is not None else None
        self.key = key
        self.value = value
        parts = []
        if self.path:
            parts.append(self.path)
        if key:
            parts.append(f"key '{key}'")
        if value is not None:
            parts.append(f"value {value!r}")
        prefix = ": ".join([", ".join(parts)]) + ": " if parts else ""
        super().__init__(prefix + message)
