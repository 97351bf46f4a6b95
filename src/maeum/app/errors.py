"""The one error type the diary shows to users: a message key, its parameters and an HTTP status."""

from __future__ import annotations

from maeum.errors import MaeumError


class UserError(MaeumError):
    """Something the user can fix; ``key`` names a message in ``maeum.app.i18n``."""

    def __init__(self, key: str, status: int = 400, **params: object) -> None:
        super().__init__(f"{key} {params}" if params else key)
        self.key, self.status, self.params = key, status, params
