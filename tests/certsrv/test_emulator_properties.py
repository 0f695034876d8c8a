"""Property tests of the emulator's parsers of untrusted input: form fields, request attributes, paths, headers."""

from __future__ import annotations

import socket
import ssl

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certsrv.testing import CertificateTemplate, Disposition, EmulatedCa
from certsrv.testing._ca import parse_cert_attrib
from certsrv.testing._emulator import _basic_user, _page_name
from tests.certsrv._emulator_helpers import USERS, csr_pem

CA = EmulatedCa("PROPERTY-CA", [CertificateTemplate("WebServer")])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csr=st.one_of(st.text(max_size=300), st.binary(max_size=300)), attrib=st.text(max_size=200))
def test_any_submission_gets_a_disposition(csr: str | bytes, attrib: str) -> None:
    row = CA.submit(csr, attrib, "EXAMPLE\\alice")
    assert row.disposition in (Disposition.ERROR, Disposition.DENIED, Disposition.ISSUED)
    assert (row.request_id == 0) == (row.disposition is Disposition.ERROR)


@settings(max_examples=200, deadline=None)
@given(attrib=st.text(max_size=300))
def test_cert_attrib_lines(attrib: str) -> None:
    parsed = parse_cert_attrib(attrib)
    assert all(name == name.strip() and name for name in parsed)


@settings(max_examples=50, deadline=None)
@given(extra=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=80))
def test_valid_csr_with_any_attributes(extra: str) -> None:
    row = CA.submit(csr_pem(), "CertificateTemplate:WebServer\n" + extra.replace("\n", " "), "u")
    assert row.disposition is Disposition.ISSUED


@settings(max_examples=300, deadline=None)
@given(path=st.text(max_size=80))
def test_page_names(path: str) -> None:
    assert isinstance(_page_name(path), str)


@settings(max_examples=300, deadline=None)
@given(header=st.text(max_size=120))
def test_basic_header_parser(header: str) -> None:
    assert _basic_user(header, USERS) in (None, *USERS)


def test_garbage_content_length_gets_400() -> None:
    from certsrv.testing import AdcsEmulator

    with AdcsEmulator(users=USERS) as emulator:
        context = ssl.create_default_context(cafile=str(emulator.ca_file))
        with (
            socket.create_connection(("127.0.0.1", emulator.port)) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"POST /certsrv/certfnsh.asp HTTP/1.1\r\nHost: localhost\r\nContent-Length: x\r\n\r\n")
            answer = tls.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400 ")
