"""Owners as values: ``@user``, ``@org/team`` or an e-mail address, parsed once.

CODEOWNERS and the policy name owners as text
(https://docs.github.com/repositories/managing-your-repositorys-settings-and-features/customizing-your-repository/about-code-owners#codeowners-syntax).
An :class:`Owner` is still that text (a ``str``, so it serialises and prints as
written) and knows what it names, so no caller re-parses ``@`` and ``/``.
"""

from __future__ import annotations

import enum


class OwnerKind(enum.StrEnum):
    USER = "user"
    TEAM = "team"
    EMAIL = "email"


class Owner(str):
    """An owner as written, with its kind and its case-folded login or team."""

    __slots__ = ("kind", "login", "team")
    kind: OwnerKind
    #: Lower-case login of a user owner, else None.
    login: str | None
    #: Lower-case ``org/team`` of a team owner, else None.
    team: str | None

    def __new__(cls, text: str) -> Owner:
        if isinstance(text, Owner):
            return text
        self = super().__new__(cls, text)
        name = text[1:].lower() if text.startswith("@") else ""
        if name and "/" in name:
            self.kind, self.login, self.team = OwnerKind.TEAM, None, name
        elif name:
            self.kind, self.login, self.team = OwnerKind.USER, name, None
        else:
            self.kind, self.login, self.team = OwnerKind.EMAIL, None, None
        return self

    @property
    def slug(self) -> str | None:
        """A team owner's slug alone (what a review request names)."""
        return self.team.split("/", 1)[1] if self.team else None


def owners(texts: tuple[str, ...] | list[str]) -> tuple[Owner, ...]:
    return tuple(Owner(text) for text in texts)
