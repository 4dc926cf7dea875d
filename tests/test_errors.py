"""The error tree and what errors carry (and never carry)."""

from __future__ import annotations

import pickle

import pytest

import routee_viber_async as rva
from routee_viber_async import (
    APIStatusError,
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseTooLargeError,
    RouteeError,
    ServerError,
    TransportError,
    UnprocessableError,
    ValidationError,
    outcome_unknown,
)
from routee_viber_async._errors import scrub_error


@pytest.mark.parametrize(
    "cls",
    [
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        UnprocessableError,
        RateLimitError,
        ServerError,
    ],
)
def test_status_errors_are_api_status_errors(cls: type[APIStatusError]) -> None:
    assert issubclass(cls, APIStatusError)
    assert issubclass(cls, RouteeError)


def test_every_exported_exception_is_a_routee_error() -> None:
    for name in rva.__all__:
        obj = getattr(rva, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, RouteeError), name
    assert issubclass(ValidationError, RouteeError)
    assert issubclass(TransportError, RouteeError)


def test_errors_mask_body_secrets_and_drop_secret_headers() -> None:
    error = ServerError(
        "boom",
        status=500,
        body={"templateParams": {"pin": "482910"}, "access_token": "tok-SECRET"},
        headers={"Set-Cookie": "session=abc", "Retry-After": "1", "X-Request-Id": "r1"},
        method="POST",
        path="/viber/transactional/messages",
    )
    assert error.body == {"templateParams": {"pin": "***"}, "access_token": "***"}
    assert error.headers == {"Retry-After": "1", "X-Request-Id": "r1"}
    assert "482910" not in str(error)
    assert "tok-SECRET" not in repr(error)
    assert str(error).startswith("POST /viber/transactional/messages: HTTP 500")


def test_validation_error_from_server_body_and_pickling() -> None:
    error = ValidationError(
        [("PARAM_CONTAINS_URL", "Parameter link must not contain a URL.")],
        code="400019029",
        developer_message="Parameter link must not contain a URL.",
        status=400,
    )
    assert error.code == "400019029"
    assert error.codes == ["PARAM_CONTAINS_URL"]
    copy = pickle.loads(pickle.dumps(error))
    assert copy.issues == error.issues
    assert copy.code == "400019029"


def test_rate_limit_error_carries_retry_after() -> None:
    error = RateLimitError("slow down", retry_after=2.5, status=429)
    assert error.retry_after == 2.5
    assert error.status == 429


def test_outcome_of_each_kind_of_failure() -> None:
    sent_answer = InvalidResponseError("not JSON", status=200)
    assert outcome_unknown(sent_answer)
    assert outcome_unknown(ResponseTooLargeError(status=200, limit=10, method="GET", path="/x"))
    token_failure = ServerError("the auth server failed", status=500)
    assert outcome_unknown(token_failure)  # a 500 of the API itself would be unknown...
    token_failure.nothing_sent = True
    assert not outcome_unknown(token_failure)  # ... but this one never reached the API
    token_failure.earlier_attempt_unknown = True
    assert outcome_unknown(token_failure)  # unless an earlier attempt may have
    assert not outcome_unknown(ClientClosedError("closed"))
    assert not outcome_unknown(ValueError("not ours"))


def test_scrub_error_reaches_every_text_and_the_chain() -> None:
    inner = ServerError("echo 4711", status=500, body={"text": "pin 4711"})
    error = ValidationError(
        [("X", "value 4711")], developer_message="value 4711 refused", body="raw 4711"
    )
    error.__context__ = inner
    scrub_error(error, ("4711",))
    for text in (str(error), error.developer_message, error.issues[0].message, error.body):
        assert "4711" not in str(text)
    assert "4711" not in str(inner)
    assert "4711" not in repr(inner.body)


def test_new_errors_keep_their_old_base_classes() -> None:
    assert issubclass(ClientClosedError, RuntimeError)
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(ResponseTooLargeError, InvalidResponseError)
    error = APIStatusError("Gone.", status=410, code="410", developer_message="Gone.")
    assert (error.code, error.developer_message) == ("410", "Gone.")
