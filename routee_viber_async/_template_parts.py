"""The parts of a template: its placeholders, its language versions and their examples.

Both the request that creates a template and the template Routee returns are built of them, so
they live apart from both.
"""

from __future__ import annotations

import attrs

from ._fields import required_on_wire

__all__ = ["TemplateLocale", "TemplateParam", "VarExample"]


@attrs.frozen
class TemplateParam:
    """A placeholder declared by a template (``{{name}}``); Routee's only type is ``TEXT``."""

    name: str
    type: str = required_on_wire("TEXT")


@attrs.frozen
class TemplateLocale:
    """One language version of a template's text."""

    lang: str
    template: str


@attrs.frozen
class VarExample:
    """An example value for a placeholder, shown to moderators."""

    name: str
    example: str
