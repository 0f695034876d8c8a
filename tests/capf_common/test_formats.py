"""PKCS#7/PEM/DER conversions, CSR loading, chain ordering and verification, atomic writes."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import random
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

import capf_common
from capf_common import (
    CapfError,
    CertificateFormatError,
    CertificateValidityError,
    ChainError,
    ChainSignatureError,
    MissingIssuerError,
    SelfSignedCertificateError,
    certificate_to_der,
    certificates_to_pkcs7,
    load_certificate,
    load_certificates,
    load_csr,
    load_pkcs7_certificates,
    order_chain,
    pkcs7_to_der,
    pkcs7_to_pem,
    verify_chain,
    write_file_atomic,
    write_private_key,
)
from tests._support.pki import TestPki, issue, new_key


def _chain(pki: TestPki) -> list[x509.Certificate]:
    return [pki.server.cert, pki.intermediate.cert, pki.root.cert]


def _wrap(text: str, width: int, sep: str) -> str:
    return sep.join(text[i : i + width] for i in range(0, len(text), width))


# -- PKCS#7 ------------------------------------------------------------------------------------------------


def test_pkcs7_der_pem_and_est_base64_give_the_same_certificates(pki: TestPki) -> None:
    der = certificates_to_pkcs7(list(reversed(_chain(pki))))
    pem = certificates_to_pkcs7(_chain(pki), pem=True)
    assert pem.startswith(b"-----BEGIN PKCS7-----")
    body = base64.b64encode(der).decode()
    forms: list[bytes | str] = [
        der,
        pem,
        pem.decode(),
        body,  # one line, as some EST servers send it
        _wrap(body, 64, "\r\n"),  # the most compatible form
        _wrap(body, 76, "\n") + "\n",
        _wrap(body, 10, " \t\n"),  # RFC 8951: whitespace anywhere
    ]
    for form in forms:
        assert set(load_pkcs7_certificates(form)) == set(_chain(pki))


def test_pkcs7_to_pem_orders_leaf_to_root(pki: TestPki) -> None:
    der = certificates_to_pkcs7([pki.root.cert, pki.server.cert, pki.intermediate.cert])
    pem = pkcs7_to_pem(der)
    assert load_certificates(pem) == _chain(pki)


def test_pkcs7_to_der_gives_the_leaf_like_capf_does(pki: TestPki) -> None:
    der = certificates_to_pkcs7([pki.intermediate.cert, pki.server.cert])
    assert x509.load_der_x509_certificate(pkcs7_to_der(der)) == pki.server.cert


def test_pkcs7_to_der_picks_the_certificate_of_the_csr_key(pki: TestPki) -> None:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(pki.client.cert.subject)
        .sign(pki.client.key, hashes.SHA256())
    )
    bundle = certificates_to_pkcs7([pki.server.cert, pki.client.cert, pki.intermediate.cert])
    assert pkcs7_to_der(bundle, public_key_of=csr) == certificate_to_der(pki.client.cert)
    other = certificates_to_pkcs7([pki.server.cert])
    with pytest.raises(CertificateFormatError, match="public key of the CSR"):
        pkcs7_to_der(other, public_key_of=csr)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "neither DER"),
        (b"hello world!", "neither DER"),
        (b"\x30\x03\x02\x01\x01", "not a certs-only PKCS#7"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "no PKCS7 block"),
        (b"-----BEGIN PKCS7-----\n!!!!\n-----END PKCS7-----\n", "valid base64"),
        (base64.b64encode(b"\x30\x03\x02\x01\x01"), "not a certs-only PKCS#7"),
    ],
)
def test_bad_pkcs7_names_what_was_expected(data: bytes, match: str) -> None:
    with pytest.raises(CertificateFormatError, match=match):
        load_pkcs7_certificates(data)


def test_certificates_to_pkcs7_needs_a_certificate() -> None:
    with pytest.raises(CertificateFormatError):
        certificates_to_pkcs7([])


# -- certificates and CSRs ----------------------------------------------------------------------------------


def test_load_certificates_reads_pem_bundles_der_and_pkcs7(pki: TestPki) -> None:
    bundle = b"junk before\n" + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in _chain(pki))
    assert load_certificates(bundle) == _chain(pki)
    assert load_certificates(certificate_to_der(pki.root.cert)) == [pki.root.cert]
    assert load_certificates(base64.b64encode(certificate_to_der(pki.root.cert))) == [pki.root.cert]
    assert set(load_certificates(certificates_to_pkcs7(_chain(pki)))) == set(_chain(pki))
    assert load_certificate(pki.server.cert_pem) == pki.server.cert
    with pytest.raises(CertificateFormatError, match="expected one certificate but found 3"):
        load_certificate(bundle)
    with pytest.raises(CertificateFormatError, match="no certificate"):
        load_certificates(pki.server.key_pem)


def test_load_csr_from_pem_der_and_base64() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "SEP74A02FC0A675")]))
        .sign(key, hashes.SHA256())
    )
    der = csr.public_bytes(serialization.Encoding.DER)
    for form in (
        csr.public_bytes(serialization.Encoding.PEM),
        der,
        base64.b64encode(der),
        _wrap(base64.b64encode(der).decode(), 64, "\n"),
    ):
        assert load_csr(form) == csr
    with pytest.raises(CertificateFormatError, match="not a valid PKCS#10"):
        load_csr(b"\x30\x00")
    with pytest.raises(CertificateFormatError, match="no CERTIFICATE REQUEST"):
        load_csr(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")


# -- chains ----------------------------------------------------------------------------------------------


def test_order_chain_from_any_order_and_drops_duplicates(pki: TestPki) -> None:
    certs = _chain(pki) * 2
    random.Random(7).shuffle(certs)
    assert order_chain(certs) == _chain(pki)
    assert order_chain([pki.intermediate.cert, pki.server.cert]) == [pki.server.cert, pki.intermediate.cert]


def test_order_chain_rejects_two_leaves_and_empty_input(pki: TestPki) -> None:
    with pytest.raises(ChainError, match="possible leaves"):
        order_chain([pki.server.cert, pki.client.cert, pki.intermediate.cert])
    with pytest.raises(ChainError, match="empty"):
        order_chain([])


def test_verify_chain_accepts_a_good_chain(pki: TestPki) -> None:
    path = verify_chain([pki.intermediate.cert, pki.server.cert], [pki.root.cert])
    assert path == _chain(pki)


def test_verify_chain_names_the_missing_issuer(pki: TestPki) -> None:
    with pytest.raises(MissingIssuerError, match="Test Issuing CA") as info:
        verify_chain([pki.server.cert], [pki.root.cert])
    assert "Test Issuing CA" in info.value.issuer
    with pytest.raises(MissingIssuerError, match="not trusted"):
        verify_chain(_chain(pki), [pki.other_root.cert])


def test_a_trusted_intermediate_ends_the_path_even_when_the_chain_holds_the_root(pki: TestPki) -> None:
    """Trusting an intermediate is legitimate: a certificate in the trust list terminates the path."""
    full = [pki.server.cert, pki.intermediate.cert, pki.root.cert]
    assert verify_chain(full, [pki.intermediate.cert]) == [pki.server.cert, pki.intermediate.cert]
    assert verify_chain(list(reversed(full)), [pki.intermediate.cert]) == [pki.server.cert, pki.intermediate.cert]
    assert verify_chain(full, [pki.root.cert]) == full
    assert verify_chain(full, [pki.other_root.cert, pki.intermediate.cert, pki.root.cert]) == full[:2]
    assert verify_chain([pki.server.cert], [pki.server.cert]) == [pki.server.cert]  # the leaf itself trusted
    with pytest.raises(MissingIssuerError, match="not trusted"):
        verify_chain(full, [pki.other_root.cert])


def test_verify_chain_rejects_a_self_signed_server_certificate(pki: TestPki) -> None:
    with pytest.raises(SelfSignedCertificateError, match="issue the certificate from the CA"):
        verify_chain([pki.self_signed.cert], [pki.root.cert])


@pytest.mark.parametrize("name", ["not_yet_valid", "expired"])
def test_verify_chain_reports_dates_and_the_clock(pki: TestPki, name: str) -> None:
    cred = getattr(pki, name)
    with pytest.raises(CertificateValidityError, match="NTP") as info:
        verify_chain([cred.cert, pki.intermediate.cert], [pki.root.cert])
    error = info.value
    assert error.not_before == cred.cert.not_valid_before_utc
    assert error.not_after == cred.cert.not_valid_after_utc
    assert ("not yet valid" in str(error)) is (name == "not_yet_valid")


def test_verify_chain_at_a_given_time(pki: TestPki) -> None:
    later = pki.not_yet_valid.cert.not_valid_before_utc + dt.timedelta(days=1)
    verify_chain([pki.not_yet_valid.cert, pki.intermediate.cert], [pki.root.cert], now=later)


def test_verify_chain_detects_a_forged_signature(pki: TestPki) -> None:
    impostor_key = new_key()
    forged = issue("localhost", issuer=None, key=impostor_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(forged.cert.subject)
        .issuer_name(pki.root.cert.subject)
        .public_key(impostor_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(pki.root.cert.not_valid_before_utc)
        .not_valid_after(pki.root.cert.not_valid_after_utc)
    )
    cert = builder.sign(impostor_key, hashes.SHA256())
    with pytest.raises(ChainSignatureError):
        verify_chain([cert], [pki.root.cert])


# -- files -------------------------------------------------------------------------------------------------


def test_write_file_atomic_replaces_content_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "SEP74A02FC0A675.der"
    target.write_bytes(b"old")
    write_file_atomic(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SEP74A02FC0A675.der"]


def test_private_files_are_0600_from_the_start(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = write_private_key(tmp_path / "phone.key", key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = serialization.load_pem_private_key(path.read_bytes(), None)
    assert loaded.public_key() == key.public_key()
    encrypted = write_private_key(tmp_path / "enc.key", key, password=b"pw")
    assert b"ENCRYPTED" in encrypted.read_bytes()
    assert stat.S_IMODE(os.stat(encrypted).st_mode) == 0o600


def test_write_file_atomic_cleans_up_when_the_target_cannot_be_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "a-directory"
    folder.mkdir()
    with pytest.raises(capf_common.FileWriteError, match="a-directory") as info:
        write_file_atomic(folder, b"data")
    assert isinstance(info.value, OSError) and info.value.errno is not None
    assert isinstance(info.value.__cause__, IsADirectoryError)
    assert [p.name for p in tmp_path.iterdir()] == ["a-directory"]


def test_write_errors_name_the_path_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "SEP74A02FC0A675.der"
    with pytest.raises(capf_common.FileWriteError) as info:
        write_file_atomic(missing, b"data")
    assert isinstance(info.value, capf_common.CapfError) and isinstance(info.value, OSError)
    assert str(missing) in str(info.value) and "folder" in str(info.value)
    assert info.value.filename == str(missing)
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(capf_common.FileWriteError, match=r"phone\.key"):
        write_private_key(tmp_path / "no-such-folder" / "phone.key", key)
    assert not (tmp_path / "no-such-folder").exists()


# -- property tests ------------------------------------------------------------------------------------------

_CONVERTERS = [
    capf_common.load_pkcs7_certificates,
    capf_common.pkcs7_to_pem,
    capf_common.pkcs7_to_der,
    capf_common.load_certificates,
    capf_common.load_certificate,
    capf_common.load_csr,
]


@settings(max_examples=250, deadline=None)
@given(data=st.one_of(st.binary(max_size=400), st.binary(max_size=40).map(lambda b: b"\x30" + b)))
def test_arbitrary_bytes_give_a_result_or_a_capf_error(data: bytes) -> None:
    for convert in _CONVERTERS:
        with contextlib.suppress(CapfError):
            convert(data)


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/= \n", max_size=200),
        st.builds(
            lambda label, body: f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n",
            st.sampled_from(["PKCS7", "CERTIFICATE", "CERTIFICATE REQUEST", "CMS"]),
            st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123456789+/=\n", max_size=120),
        ),
    )
)
def test_arbitrary_text_gives_a_result_or_a_capf_error(text: str) -> None:
    for convert in _CONVERTERS:
        with contextlib.suppress(CapfError):
            convert(text)


# -- interoperability with OpenSSL's encodings --------------------------------------------------------------

_OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(_OPENSSL is None, reason="the openssl command is not installed")
def test_pkcs7_made_by_openssl(pki: TestPki, tmp_path: Path) -> None:
    assert _OPENSSL is not None
    bundle = tmp_path / "chain.pem"
    bundle.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in _chain(pki)))
    for form in ("DER", "PEM"):
        out = tmp_path / f"chain.p7b.{form}"
        subprocess.run(
            [_OPENSSL, "crl2pkcs7", "-nocrl", "-certfile", str(bundle), "-outform", form, "-out", str(out)],
            check=True,
            capture_output=True,
        )
        data = out.read_bytes()
        assert set(load_pkcs7_certificates(data)) == set(_chain(pki))
        assert load_certificates(pkcs7_to_pem(data)) == _chain(pki)
        if form == "DER":  # the EST form: base64 of the DER, wrapped at 64 columns
            assert set(load_pkcs7_certificates(_wrap(base64.b64encode(data).decode(), 64, "\n"))) == set(_chain(pki))


@pytest.mark.skipif(_OPENSSL is None, reason="the openssl command is not installed")
def test_csr_made_by_openssl(tmp_path: Path) -> None:
    assert _OPENSSL is not None
    key, pem, der = tmp_path / "phone.key", tmp_path / "phone.csr", tmp_path / "phone.der"
    subprocess.run(
        [_OPENSSL, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-subj", "/CN=SEP74A02FC0A675", "-out", str(pem)],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [_OPENSSL, "req", "-in", str(pem), "-outform", "DER", "-out", str(der)], check=True, capture_output=True
    )
    from_pem, from_der = load_csr(pem.read_bytes()), load_csr(der.read_bytes())
    assert from_pem == from_der
    assert from_pem.is_signature_valid
    assert from_pem.subject.rfc4514_string() == "CN=SEP74A02FC0A675"


@pytest.fixture(scope="module")
def bundle_der(pki: TestPki) -> bytes:
    return certificates_to_pkcs7(_chain(pki))


@settings(max_examples=250, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.integers(min_value=1)),
)
def test_mutated_bundles_give_a_result_or_a_capf_error(
    bundle_der: bytes, pki: TestPki, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(bundle_der)
    for position, value in edits:
        data[position % len(data)] = value
    mutated = bytes(data[: cut % len(data) + 1] if cut is not None else data)
    for convert in _CONVERTERS:
        with contextlib.suppress(CapfError):
            convert(mutated)
    with contextlib.suppress(CapfError):
        certs = load_pkcs7_certificates(mutated)
        with contextlib.suppress(CapfError):
            verify_chain(certs, [pki.root.cert])


def test_bundles_cryptography_refuses_are_read_with_the_fallback(pki: TestPki, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs7

    der = certificates_to_pkcs7(_chain(pki))

    def refuse(data: bytes) -> list[x509.Certificate]:
        raise ValueError("error parsing asn1 value")

    monkeypatch.setattr(pkcs7, "load_der_pkcs7_certificates", refuse)
    assert set(load_pkcs7_certificates(der)) == set(_chain(pki))
    with pytest.raises(CertificateFormatError, match="not a certs-only PKCS#7"):
        load_pkcs7_certificates(certificate_to_der(pki.root.cert))
