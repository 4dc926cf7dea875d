"""JSON shapes of a stored message: send answers, tracking GET, delivery callbacks, inspection.

Seed 001: delivery callbacks carry ``status.name``/``status.updatedDate`` and never
``templateParams`` nor an empty ``body``; tracking GET carries ``status.status``/``status.date``
and ``transactionalTemplate.templateParams`` with ``pin`` masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._enums import MessageKind
from ._inbox import CallbackView
from ._state import MessageRecord

__all__ = [
    "UNKNOWN_COUNTRY",
    "country_of",
    "delivery_callback",
    "inbox_view",
    "inspection_view",
    "legacy_otp_response",
    "send_response",
    "tracking_view",
]

# E.164 country calling codes → ISO 3166-1 alpha-2 (longest prefix wins).
_CALLING_CODES = {
    "1": "US",
    "7": "RU",
    "20": "EG",
    "27": "ZA",
    "30": "GR",
    "31": "NL",
    "32": "BE",
    "33": "FR",
    "34": "ES",
    "36": "HU",
    "39": "IT",
    "40": "RO",
    "41": "CH",
    "43": "AT",
    "44": "GB",
    "45": "DK",
    "46": "SE",
    "47": "NO",
    "48": "PL",
    "49": "DE",
    "51": "PE",
    "52": "MX",
    "54": "AR",
    "55": "BR",
    "56": "CL",
    "57": "CO",
    "60": "MY",
    "61": "AU",
    "62": "ID",
    "63": "PH",
    "64": "NZ",
    "65": "SG",
    "66": "TH",
    "81": "JP",
    "82": "KR",
    "84": "VN",
    "86": "CN",
    "90": "TR",
    "91": "IN",
    "92": "PK",
    "351": "PT",
    "353": "IE",
    "357": "CY",
    "358": "FI",
    "359": "BG",
    "370": "LT",
    "371": "LV",
    "372": "EE",
    "380": "UA",
    "381": "RS",
    "385": "HR",
    "386": "SI",
    "420": "CZ",
    "421": "SK",
    "971": "AE",
    "972": "IL",
    "966": "SA",
}

#: ``country`` when the calling code is not in the table (ISO's "unknown" code).
UNKNOWN_COUNTRY = "ZZ"


def country_of(number: str) -> str:
    """The ISO 3166-1 alpha-2 country of an E.164 number (``ZZ`` when unknown)."""
    digits = number.lstrip("+")
    for size in (3, 2, 1):
        country = _CALLING_CODES.get(digits[:size])
        if country is not None:
            return country
    return UNKNOWN_COUNTRY


def _template_block(record: MessageRecord) -> dict[str, Any]:
    return {
        "templateId": record.template_id,
        "templateLang": record.template_lang,
        "deliveryScope": record.delivery_scope,
        "seq": record.seq,
    }


def send_response(record: MessageRecord) -> dict[str, Any]:
    """The HTTP 200 answer of ``POST /viber/transactional/messages``."""
    body: dict[str, Any] = {
        "trackingId": record.tracking_id,
        "deliveryScope": record.delivery_scope,
        "seq": record.seq,
        "to": record.to,
        "from": record.sender_name,
        "status": {"status": record.status.value, "date": record.status_date},
        "price": record.price,
    }
    if record.label is not None:
        body["label"] = record.label
    if record.session_message is not None:
        body["sessionMessage"] = record.session_message
    if record.callback_url is not None:
        body["callbackUrl"] = record.callback_url
    if record.ttl is not None:
        body["ttl"] = record.ttl
    return body


def legacy_otp_response(
    record: MessageRecord, application_name: str, template_params: Mapping[str, Any]
) -> dict[str, Any]:
    """Seed 000's HTTP 200 answer of ``POST /viber/otp``.

    ``template_params`` is the request's own map, echoed as seed 000 requires: it is the only
    place a real pin is written, and it is never stored.
    """
    return {
        "trackingId": record.tracking_id,
        "to": record.to,
        "from": record.sender_name,
        "country": country_of(record.to),
        "status": {"status": record.status.value, "date": record.status_date},
        "applicationName": application_name,
        "direction": "Outbound",
        "ttl": record.ttl,
        "seq": record.seq,
        "label": record.label,
        "type": record.legacy_type,
        "templateId": record.template_id,
        "templateParams": dict(template_params),
        "templateLang": record.template_lang,
    }


def tracking_view(record: MessageRecord, application_name: str) -> dict[str, Any]:
    """``GET /viber/tracking/{trackingId}``: the record with ``pin`` masked."""
    block = _template_block(record)
    block["templateParams"] = record.params
    body: dict[str, Any] = {
        "trackingId": record.tracking_id,
        "to": record.to,
        "from": record.sender_name,
        "country": country_of(record.to),
        "direction": "Outbound",
        "status": {"status": record.status.value, "date": record.status_date},
        "messageKind": record.kind.value,
        "transactionalTemplate": block,
        "createdAt": record.created_at,
        "templateId": record.template_id,
        "price": record.price,
    }
    if record.kind == MessageKind.OTP:
        body["applicationName"] = application_name
    if record.label is not None:
        body["label"] = record.label
    if record.ttl is not None:
        body["ttl"] = record.ttl
    return body


def delivery_callback(record: MessageRecord) -> dict[str, Any]:
    """Seed 001's delivery callback body for the record's current status."""
    return {
        "trackingId": record.tracking_id,
        "to": record.to,
        "status": {"name": record.status.value, "updatedDate": record.status_date},
        "messageKind": record.kind.value,
        "transactionalTemplate": _template_block(record),
        "createdAt": record.created_at,
        "templateId": record.template_id,
    }


def inspection_view(record: MessageRecord) -> dict[str, Any]:
    """One item of ``GET /sandbox/messages`` (no parameters, so no pin)."""
    return {
        "trackingId": record.tracking_id,
        "kind": record.kind.value,
        "senderInfoTrackingId": record.sender_id,
        "seq": record.seq,
        "to": record.to,
        "templateId": record.template_id,
        "templateLang": record.template_lang,
        "deliveryScope": record.delivery_scope,
        "status": record.status.value,
        "statusDate": record.status_date,
        "createdAt": record.created_at,
    }


def inbox_view(record: MessageRecord, text: str, callbacks: list[CallbackView]) -> dict[str, Any]:
    """One message of the inbox's JSON API: as the handset shows it (``text``, pin included),
    with its identifiers, status timeline and finished delivery callbacks."""
    view = inspection_view(record)
    view["text"] = text
    view["from"] = record.sender_name
    view["label"] = record.label
    view["failureReason"] = record.failure_reason
    view["timeline"] = [{"status": status.value, "date": date} for status, date in record.history]
    view["callbacks"] = [callback.to_json() for callback in callbacks]
    return view
