"""Every page parser, given any bytes, returns a result or raises a CertsrvError, never anything else."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certsrv._errors import CertsrvError
from certsrv._pages import (
    parse_ca_info_page,
    parse_certificate_response,
    parse_crl_response,
    parse_iis_error_page,
    parse_pkcs7_response,
    parse_retrieval_error_page,
    parse_submit_page,
    parse_template_page,
)
from tests.certsrv._pages_data import LANGUAGES, page

PARSERS: list[Callable[[bytes], Any]] = [
    parse_submit_page,
    parse_retrieval_error_page,
    parse_ca_info_page,
    parse_template_page,
    parse_iis_error_page,
    lambda b: parse_certificate_response(b, "application/pkix-cert"),
    lambda b: parse_certificate_response(b, "text/html"),
    lambda b: parse_pkcs7_response(b, None),
    lambda b: parse_pkcs7_response(b, "application/x-pkcs7-certificates"),
    lambda b: parse_pkcs7_response(b, "text/html"),
    lambda b: parse_crl_response(b, None),
    lambda b: parse_crl_response(b, "application/pkix-crl"),
    lambda b: parse_crl_response(b, "text/html"),
]

FIXTURES = [
    page(name, lang)
    for lang in LANGUAGES
    for name in (
        "certfnsh_issued",
        "certfnsh_pending",
        "certfnsh_denied_template",
        "certfnsh_error",
        "certnew_pending",
        "certnew_denied",
        "certcarc",
        "certrqxt",
        "unauth_401",
    )
]

MARKERS = [
    b"certnew.cer?ReqID=",
    b"ID=locDenied",
    b"ID=locPageTitle",
    b"ID=locDispLabel",
    b"</DT><DD>",
    b"var nRenewals=",
    b"rgCrlState=new Array(",
    b"<Select Name=lbCertTemplate>",
    b"<Option Value=",
    b"0x80094800",
    b"-----BEGIN CERTIFICATE-----",
    b"\x30\x82",
    b'"',
    b"<h2>401",
]


def _mutations() -> st.SearchStrategy[bytes]:
    arbitrary = st.binary(max_size=2000)
    pieces = st.one_of(st.sampled_from(MARKERS), st.binary(max_size=40), st.text(max_size=40).map(str.encode))
    spliced = st.lists(pieces, max_size=30).map(b"".join)
    cut = st.tuples(st.sampled_from(FIXTURES), st.integers(0, 30000), st.integers(0, 30000)).map(
        lambda t: t[0][: t[1]] + t[0][t[2] :]
    )
    flipped = st.tuples(st.sampled_from(FIXTURES), st.integers(0, 30000), st.binary(min_size=1, max_size=8)).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + len(t[2]) :]
    )
    return st.one_of(arbitrary, spliced, cut, flipped)


@pytest.mark.parametrize("parser", PARSERS)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_mutations())
def test_parsers_return_or_raise_certsrv_error(parser: Callable[[bytes], Any], body: bytes) -> None:
    with contextlib.suppress(CertsrvError):
        parser(body)


PATHOLOGICAL = [
    b"<p " * 60000,
    b"<" * 200000,
    b"<h2>" * 50000,
    b"<title>x" * 25000,
    b"<P ID=locReqIdMsg " * 10000,
    b"ID=locDispLabel " * 12000,
    b'"0x80094800 ' * 16000,
    b"-----BEGIN CERTIFICATE-----" * 7000,
    b"<Select Name=lbCertTemplate>" + b"<Option Value=" * 14000,
    b"ID=loc" + b"Req" * 60000,
    b"<P ID=locPageTitle>" + b"<P ID=locInfo> 1 2 " * 20000,
]


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("body", PATHOLOGICAL, ids=lambda b: repr(b[:12]))
def test_parsers_stay_linear_on_pathological_pages(parser: Callable[[bytes], Any], body: bytes) -> None:
    # a quadratic regex would take hours here and trip the test timeout (no timing assertion)
    with contextlib.suppress(CertsrvError):
        parser(body)
