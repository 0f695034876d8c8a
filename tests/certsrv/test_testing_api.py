"""Pins the public surface of certsrv.testing (the AD CS emulator): a change here changes the published API."""

from __future__ import annotations

import inspect

import certsrv.testing

EXPECTED_ALL = {
    "AdcsEmulator",
    "AuthDecision",
    "AuthScheme",
    "CaRequest",
    "CertificateTemplate",
    "Disposition",
    "EmulatedCa",
    "ExtendedProtection",
    "Faults",
    "HResult",
    "IisLog",
    "IisLogEntry",
    "Policy",
}


def test_all_is_pinned() -> None:
    assert set(certsrv.testing.__all__) == EXPECTED_ALL
    assert len(certsrv.testing.__all__) == len(set(certsrv.testing.__all__)), "duplicate names in __all__"


def test_every_public_name_exists_and_is_documented() -> None:
    for name in certsrv.testing.__all__:
        obj = getattr(certsrv.testing, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_page_templates_ship_with_their_licence() -> None:
    from importlib import resources

    folder = resources.files("certsrv.testing").joinpath("_templates")
    names = {entry.name for entry in folder.iterdir()}
    assert {"LICENSE-adcs-issuer.txt", "NOTICE.md", "certcarc.asp.html", "error.html", "iis_error.html"} <= names
    assert "Copyright (c) 2019, Nokia" in folder.joinpath("LICENSE-adcs-issuer.txt").read_text(encoding="utf-8")
