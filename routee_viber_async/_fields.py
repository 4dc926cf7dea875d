"""attrs field helpers shared by the models: wire names, secrets and kept unknown keys.

Field metadata is read by the converter (``_converter.py``):

- ``WIRE_NAME``: the JSON key when it is not the camelCase of the attribute (``from_`` → ``from``).
- ``SECRET``: the value (a mapping with ``pin``, or a pin itself) is masked everywhere but the wire.
- ``CODEC``: a ``(to_wire, from_wire)`` pair of value functions (the legacy OTP ``type``).
- ``ALWAYS``: written even when it holds its default (a field the wire requires).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from ._masking import MASK, mask_mapping_repr, mask_url_repr

__all__ = [
    "ALWAYS",
    "CODEC",
    "SECRET",
    "WIRE_NAME",
    "extra_field",
    "secret_field",
    "required_on_wire",
    "secret_mapping_field",
    "url_field",
    "wire_field",
]

WIRE_NAME = "routee.wire_name"
SECRET = "routee.secret"
CODEC = "routee.codec"
ALWAYS = "routee.always"


def _mask_scalar_repr(value: object) -> str:
    return "None" if value is None else repr(MASK)


def secret_mapping_field(*, default: Any = attrs.NOTHING, factory: Any = None) -> Any:
    """A template-parameter mapping: its ``pin`` never shows in a repr, log or file."""
    if factory is not None:
        return attrs.field(factory=factory, repr=mask_mapping_repr, metadata={SECRET: True})
    return attrs.field(default=default, repr=mask_mapping_repr, metadata={SECRET: True})


def secret_field(*, default: Any = None) -> Any:
    """A secret scalar (an OTP ``pin``): ``***`` in reprs and masked outputs."""
    return attrs.field(default=default, repr=_mask_scalar_repr, metadata={SECRET: True})


def extra_field() -> Any:
    """Keys of a response that this version does not model, kept as they came."""
    return attrs.field(factory=dict, repr=mask_mapping_repr, kw_only=True)


def wire_field(
    name: str,
    *,
    default: Any = None,
    codec: tuple[Callable[[Any], Any], Callable[[Any], Any]] | None = None,
) -> Any:
    """A field whose JSON key is ``name`` (and optionally whose value is translated)."""
    metadata: dict[str, Any] = {WIRE_NAME: name}
    if codec is not None:
        metadata[CODEC] = codec
    return attrs.field(default=default, metadata=metadata)


def required_on_wire(default: Any) -> Any:
    """A field with a default that is still always written (the wire requires the key)."""
    return attrs.field(default=default, metadata={ALWAYS: True})


def url_field(*, default: Any = None) -> Any:
    """A URL (``callbackUrl``, ``inboundUrl``): its token and userinfo are ``***`` in reprs.

    The wire keeps the URL as it is: Routee must call it with its token.
    """
    return attrs.field(default=default, repr=mask_url_repr)
