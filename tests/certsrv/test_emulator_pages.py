"""The emulator's pages keep the real AD CS markup (byte for byte where a real page exists) in English and German."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from certsrv.testing import CertificateTemplate, Disposition
from certsrv.testing._ca import ADMIN_DENIED_REQUEST, PROPERTY_EMPTY, S_OK, UNSUPPORTED_CERT_TYPE, EmulatedCa
from certsrv.testing._pages import PageRenderer
from tests.certsrv._emulator_helpers import csr_pem

REAL = Path(__file__).parent / "data" / "real"


def test_certcarc_is_the_real_page() -> None:
    real = (REAL / "certcarc.asp.tmpl").read_text().replace("{{ .Renewals }}", "0")
    rendered = PageRenderer("en", "NokiaInternalSubCA07").ca_download(0, delta_crl=False).decode()
    assert rendered == real


def test_error_page_is_the_real_page() -> None:
    real = (
        (REAL / "certnew.cer.tmpl")
        .read_text()
        .replace("{{ .DispositionMessage }}", "Taken Under Submission")
        .replace("{{ .LastStatus }}", "The operation completed successfully. 0x0 (WIN32: 0)")
    )
    rendered = PageRenderer("en", "NokiaInternalSubCA07").error(
        new_request=False,
        disposition=Disposition.UNDER_SUBMISSION,
        disposition_message="Taken Under Submission",
        result=S_OK,
        last_status=S_OK,
    )
    assert rendered.decode() == real


def test_401_page_is_the_real_iis_page() -> None:
    real = "".join((REAL / "unauth.tmpl").read_text().splitlines(keepends=True)[:29])
    assert PageRenderer("en").iis_error(401).decode("iso-8859-1") == real


def _tags(page: str) -> list[str]:
    """The element structure of a page: tag names and ID attributes, without any text."""
    return re.findall(r"<(/?[A-Za-z]+)(?:[^>]*?\bID=(\w+))?", page)


@pytest.mark.parametrize(
    "render",
    [
        lambda p: p.home(),
        lambda p: p.request_form([CertificateTemplate("WebServer"), CertificateTemplate("CiscoRA")]),
        lambda p: p.ca_download(3, delta_crl=True),
        lambda p: p.issued(77, 3),
        lambda p: p.pending(12),
        lambda p: p.error(
            new_request=False,
            disposition=Disposition.DENIED,
            disposition_message="Denied by Administrator",
            result=S_OK,
            last_status=ADMIN_DENIED_REQUEST,
        ),
        lambda p: p.error(
            new_request=False,
            disposition=Disposition.INCOMPLETE,
            disposition_message="",
            result=PROPERTY_EMPTY,
            last_status=S_OK,
        ),
        lambda p: p.iis_error(401),
        lambda p: p.iis_error(500),
    ],
)
def test_german_pages_have_the_english_structure(render: object) -> None:
    assert callable(render)
    english = render(PageRenderer("en", "LAB-DC-RTP")).decode("utf-8", "replace")
    german = render(PageRenderer("de", "LAB-DC-RTP")).decode("utf-8", "replace")
    assert german != english
    assert _tags(german) == _tags(english)


def test_german_denied_and_pending_pages() -> None:
    ca = EmulatedCa("LAB-DC-RTP", [CertificateTemplate("CiscoRA")])
    denied = ca.submit(csr_pem(), "CertificateTemplate:CiscoRAA")
    page = PageRenderer("de", "LAB-DC-RTP").denied(denied).decode()
    assert "<P ID=locDenied> Ihre Zertifikatanforderung wurde verweigert." in page
    assert f"<P ID=locReqIdMsg> Ihre Anforderungs-ID lautet {denied.request_id}." in page
    assert 'Die Dispositionsmeldung lautet: "Vom Richtlinienmodul verweigert  0x80094800, Die Anforderung' in page
    assert UNSUPPORTED_CERT_TYPE.line("de").endswith("0x80094800 (-2146875392 CERTSRV_E_UNSUPPORTED_CERT_TYPE)")
    pending = PageRenderer("de", "LAB-DC-RTP").pending(12).decode()
    assert "<P ID=locPageTitle> <B> Zertifikat ausstehend </B>" in pending
    assert "Ihre Anforderungs-ID lautet 12." in pending


def test_crlf_option() -> None:
    page = PageRenderer("en", crlf=True).pending(5)
    assert b"\r\n" in page
    assert b"\n" not in page.replace(b"\r\n", b"")


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="language"):
        PageRenderer("fr")  # type: ignore[arg-type]
