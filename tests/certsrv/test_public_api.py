"""Pins the public surface of certsrv: a change here is a change of the published API."""

from __future__ import annotations

import inspect

import certsrv

EXPECTED_ALL = {
    "__version__",
    "CertsrvError",
}


def test_all_is_pinned() -> None:
    assert set(certsrv.__all__) == EXPECTED_ALL
    assert len(certsrv.__all__) == len(set(certsrv.__all__)), "duplicate names in __all__"


def test_every_public_name_exists_and_is_documented() -> None:
    for name in certsrv.__all__:
        obj = getattr(certsrv, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_root_error_is_an_exception() -> None:
    assert issubclass(certsrv.CertsrvError, Exception)
