"""The public surface: ``__all__`` complete, sorted, importable; private modules declare theirs."""

from __future__ import annotations

import importlib
import pkgutil
import re
import tomllib
from pathlib import Path

import routee_viber_async

ROOT = Path(__file__).parent.parent

#: Names fixed by the public contract (shared/API.md).
CONTRACT = {
    "RouteeViberClient", "ClientCredentials", "StaticToken", "RetryPolicy", "SendMessage",
    "LegacyOtp", "CreateTemplate", "TemplateParam", "TemplateLocale", "VarExample",
    "DeliveryScope", "TemplateCategory", "Label", "SendResult", "OtpResult", "Template",
    "TrackingRecord", "DeliveryCallback", "ModerationCallback", "SendOutcome", "RouteeError",
    "ValidationError", "AuthenticationError", "PermissionDeniedError", "NotFoundError",
    "UnprocessableError", "RateLimitError", "ServerError", "TransportError", "TokenProvider",
}  # fmt: skip
#: The observability hooks protocol (issue 21): the base class and the events its methods get.
HOOKS = {"Hooks", "CallEvent", "AttemptEvent", "RetryEvent", "TokenFetchEvent"}


def test_all_is_sorted_and_unique() -> None:
    names = routee_viber_async.__all__
    assert names == sorted(names, key=lambda n: (n.startswith("_"), n))
    assert len(names) == len(set(names))


def test_all_names_import_and_contract_is_covered() -> None:
    for name in routee_viber_async.__all__:
        assert getattr(routee_viber_async, name) is not None
    assert set(routee_viber_async.__all__) >= CONTRACT | HOOKS


def test_every_public_class_reports_the_package_as_its_module() -> None:
    for name in routee_viber_async.__all__:
        obj = getattr(routee_viber_async, name)
        if isinstance(obj, type):
            assert obj.__module__ == "routee_viber_async", name


def test_no_public_name_is_left_out_of_all() -> None:
    public = {
        name
        for name, obj in vars(routee_viber_async).items()
        if not name.startswith("_") and getattr(obj, "__module__", "").startswith("routee_viber")
    }
    assert public <= set(routee_viber_async.__all__)


def test_every_private_module_declares_all() -> None:
    for info in pkgutil.walk_packages(routee_viber_async.__path__, "routee_viber_async."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        if info.name.rsplit(".", 1)[-1].startswith("_") and not info.name.endswith("__init__"):
            assert hasattr(module, "__all__"), info.name
            for name in module.__all__:
                assert hasattr(module, name), f"{info.name}.{name}"


def test_version_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert routee_viber_async.__version__ == project["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"])


def test_py_typed_is_shipped() -> None:
    assert (Path(routee_viber_async.__file__).parent / "py.typed").exists()
