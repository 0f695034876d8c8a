"""Loads the AD CS page fixtures of tests/certsrv/data (English and German variants, and the real pages)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data"
LANGUAGES = ("en", "de")


def page(name: str, lang: str = "en") -> bytes:
    """The fixture page ``name.lang.html``."""
    return (DATA / f"{name}.{lang}.html").read_bytes()


def real(name: str) -> bytes:
    """A real page from nokia/adcs-issuer (see data/real/PROVENANCE.md)."""
    return (DATA / "real" / name).read_bytes()


def real_certnew(message: bytes, last_status: bytes) -> bytes:
    """The real certnew.cer error page with its two placeholders filled."""
    return (
        real("certnew.cer.tmpl")
        .replace(b"{{ .DispositionMessage }}", message)
        .replace(b"{{ .LastStatus }}", last_status)
    )


def real_certcarc(renewals: int) -> bytes:
    """The real certcarc.asp page with ``nRenewals`` filled."""
    return real("certcarc.asp.tmpl").replace(b"{{ .Renewals }}", str(renewals).encode())
