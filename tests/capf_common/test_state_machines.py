"""Both CAPF state machines driven against each other in memory, through every operation, mode and failure."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import socket
import ssl
import threading
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from capf_common import (
    NEED_DATA,
    AuthRequest,
    AuthResponse,
    AuthType,
    CapfAuthenticationError,
    CapfOperationResult,
    CapfServerConnection,
    CapfSignatureError,
    CertificateElement,
    CertificateType,
    Command,
    ConnectionClosed,
    Curve,
    DeleteCertificateRequest,
    DeleteCertificateResponse,
    EndSession,
    Event,
    FetchCertificateRequest,
    FetchCertificateResponse,
    FramingError,
    HashedSignature,
    HashId,
    KeyGenerateRequest,
    KeyGenerateResponse,
    KeyType,
    LocalProtocolError,
    NeedData,
    PhoneConnection,
    Reason,
    RemoteProtocolError,
    RequestInProgress,
    SessionMismatchError,
    SessionState,
    SignCertificateRequest,
    SignCertificateResponse,
    StoreCertificateRequest,
    StoreCertificateResponse,
    make_auth_signatures,
    verify_auth_response,
)
from tests._support.pki import TestPki, issue
from tests.capf_common._protocol_support import DEVICE, deliver, issue_lsc, make_csr, phone_pki


def only(events: list[Event]) -> Event:
    assert len(events) == 1, events
    return events[0]


def authenticate(
    server: CapfServerConnection,
    phone: PhoneConnection,
    mode: AuthType,
    answer: Callable[[PhoneConnection], bytes],
    *,
    chunk: int = 0,
) -> AuthResponse:
    request = only(deliver(server.start(mode), phone, chunk=chunk))
    assert request == AuthRequest(version=3, auth_type=mode)
    assert phone.session_id == server.session_id
    response = only(deliver(answer(phone), server, chunk=chunk))
    assert isinstance(response, AuthResponse)
    assert server.device_name == DEVICE
    return response


def check(response: AuthResponse, mode: AuthType, server: CapfServerConnection, **kwargs: object) -> object:
    pki = phone_pki()
    assert server.session_id is not None
    return verify_auth_response(
        response,
        mode=mode,
        session_id=server.session_id,
        lsc_issuers=[pki.capf_ca.cert],
        mic_issuers=[pki.mic_ca.cert],
        **kwargs,  # type: ignore[arg-type]
    )


def finish(server: CapfServerConnection, phone: PhoneConnection, reason: Reason) -> None:
    end = only(deliver(server.end_session(reason), phone))
    assert end == EndSession(reason=reason)
    assert phone.state is SessionState.CLOSED and server.state is SessionState.CLOSED
    assert phone.end_reason == reason
    assert deliver(b"", phone) == [ConnectionClosed()]
    assert deliver(b"", server) == [ConnectionClosed()]


def install_by_csr(server: CapfServerConnection, phone: PhoneConnection, *, chunk: int = 0) -> x509.Certificate:
    """The Online CA install: CSR from the phone, certificate from the CA, stored on the phone."""
    pki = phone_pki()
    request = only(deliver(server.request_csr(KeyType.RSA, key_size=2048), phone, chunk=chunk))
    assert request == SignCertificateRequest(key_type=KeyType.RSA, key_size=2048, digest=HashId.SHA256)
    assert phone.pending_request == request
    in_progress = deliver(phone.request_in_progress(), server, chunk=chunk)
    assert in_progress == [RequestInProgress()]
    assert server.state is SessionState.RECEIVE
    csr_event = only(deliver(phone.send_csr(make_csr(DEVICE, pki.rsa_key)), server, chunk=chunk))
    assert isinstance(csr_event, SignCertificateResponse) and csr_event.succeeded
    csr = csr_event.load_csr()
    assert csr.subject.rfc4514_string() == f"CN={DEVICE}"
    lsc = issue_lsc(pki.capf_ca, DEVICE, csr.public_key())
    store = only(deliver(server.store_certificate(lsc), phone, chunk=chunk))
    assert isinstance(store, StoreCertificateRequest)
    assert store.certificate is not None and store.certificate.load() == lsc
    assert store.certificate_type == CertificateType.LSC
    stored = only(deliver(phone.acknowledge(), server, chunk=chunk))
    assert stored == StoreCertificateResponse(reason=Reason.UPDATE_CERTIFICATE) and stored.succeeded
    return lsc


def test_install_by_csr_with_authentication_string() -> None:
    server, phone = CapfServerConnection(session_id=0x01020304), PhoneConnection()
    response = authenticate(server, phone, AuthType.PASSWORD, lambda p: p.authenticate(DEVICE, password="1234"))
    assert response.password == "1234" and response.version == 3
    assert check(response, AuthType.PASSWORD, server, password="1234") is None
    install_by_csr(server, phone)
    finish(server, phone, Reason.UPDATE_CERTIFICATE)


def test_whole_session_survives_one_byte_reads() -> None:
    server, phone = CapfServerConnection(), PhoneConnection()
    authenticate(server, phone, AuthType.NO_PASSWORD, lambda p: p.authenticate(DEVICE), chunk=1)
    install_by_csr(server, phone, chunk=1)
    finish(server, phone, Reason.UPDATE_CERTIFICATE)


@pytest.mark.parametrize(
    ("key_type", "expected"),
    [
        (KeyType.RSA, KeyGenerateRequest(key_type=KeyType.RSA, key_size=2048)),
        (KeyType.EC, KeyGenerateRequest(key_type=KeyType.EC, curve=Curve.SECP384R1)),
    ],
)
def test_classic_install_by_key_generation_with_null_string(key_type: KeyType, expected: KeyGenerateRequest) -> None:
    pki = phone_pki()
    server, phone = CapfServerConnection(), PhoneConnection()
    response = authenticate(server, phone, AuthType.NO_PASSWORD, lambda p: p.authenticate(DEVICE))
    assert response.password == ""
    check(response, AuthType.NO_PASSWORD, server)
    request = only(deliver(server.request_public_key(key_type, curve=Curve.SECP384R1), phone))
    assert request == expected
    key = pki.rsa_key if key_type == KeyType.RSA else ec.generate_private_key(ec.SECP384R1())
    answer = deliver(phone.request_in_progress() + phone.send_public_key(key.public_key()), server)
    assert answer[0] == RequestInProgress()
    assert isinstance(answer[1], KeyGenerateResponse)
    public_key = answer[1].load_public_key()
    assert public_key == key.public_key()
    lsc = issue_lsc(pki.capf_ca, DEVICE, public_key)
    only(deliver(server.store_certificate(lsc), phone))
    assert only(deliver(phone.acknowledge(), server)) == StoreCertificateResponse(reason=Reason.UPDATE_CERTIFICATE)
    finish(server, phone, Reason.UPDATE_CERTIFICATE)


@pytest.mark.parametrize("lsc_name", ["lsc_rsa", "lsc_ec"])
def test_upgrade_by_existing_lsc(lsc_name: str) -> None:
    pki = phone_pki()
    lsc = getattr(pki, lsc_name)
    server, phone = CapfServerConnection(), PhoneConnection()
    response = authenticate(
        server, phone, AuthType.LSC, lambda p: p.authenticate(DEVICE, certificate=lsc.cert, private_key=lsc.key)
    )
    assert response.certificate == CertificateElement.from_certificate(lsc.cert)
    assert response.signed_data and response.sha2_signed_data and response.sha2_signed_data.hash_id == HashId.SHA512
    assert check(response, AuthType.LSC, server) == lsc.cert
    install_by_csr(server, phone)
    finish(server, phone, Reason.UPDATE_CERTIFICATE)


@pytest.mark.parametrize("mic_name", ["mic_rsa", "mic_ec"])
def test_install_by_existing_mic_with_sudi(mic_name: str) -> None:
    pki = phone_pki()
    mic = getattr(pki, mic_name)
    server, phone = CapfServerConnection(session_id=0xA1B2C3D4), PhoneConnection()
    response = authenticate(
        server,
        phone,
        AuthType.MIC,
        lambda p: p.authenticate(
            DEVICE,
            certificate=mic.cert,
            private_key=mic.key,
            certificate_type=CertificateType.MIC,
            sudi_certificate=pki.sudi_rsa.cert,
            sudi_key=pki.sudi_rsa.key,
        ),
    )
    assert response.sudi_data is not None and len(response.sudi_data.signatures) == 2
    assert check(response, AuthType.MIC, server) == mic.cert
    # "precedence to LSC" falls back to the MIC the phone offers
    assert check(response, AuthType.LSC, server) == mic.cert
    install_by_csr(server, phone)
    finish(server, phone, Reason.UPDATE_CERTIFICATE)


@pytest.mark.parametrize("sudi_name", ["sudi_rsa", "sudi_ec"])
def test_mic_mode_with_sudi_only(sudi_name: str) -> None:
    pki = phone_pki()
    sudi = getattr(pki, sudi_name)
    server, phone = CapfServerConnection(), PhoneConnection()
    response = authenticate(
        server, phone, AuthType.MIC, lambda p: p.authenticate(DEVICE, sudi_certificate=sudi.cert, sudi_key=sudi.key)
    )
    assert check(response, AuthType.MIC, server) == sudi.cert
    # the SUDI signature covers the session id: another session's id fails
    with pytest.raises(CapfAuthenticationError) as info:
        verify_auth_response(
            response, mode=AuthType.MIC, session_id=(server.session_id or 0) ^ 1, mic_issuers=[pki.mic_ca.cert]
        )
    assert info.value.capf_code == 6


def test_fetch_troubleshoot() -> None:
    pki = phone_pki()
    server, phone = CapfServerConnection(), PhoneConnection()
    authenticate(server, phone, AuthType.NO_PASSWORD, lambda p: p.authenticate(DEVICE))
    assert only(deliver(server.fetch_certificate(), phone)) == FetchCertificateRequest()
    certs = (
        CertificateElement.from_certificate(pki.lsc_rsa.cert),
        CertificateElement.from_certificate(pki.mic_rsa.cert, CertificateType.MIC),
    )
    fetched = only(deliver(phone.send_certificates(*certs), server))
    assert isinstance(fetched, FetchCertificateResponse) and fetched.succeeded
    assert [c.load() for c in fetched.certificates] == [pki.lsc_rsa.cert, pki.mic_rsa.cert]
    finish(server, phone, Reason.NO_ACTION)


def test_delete() -> None:
    server, phone = CapfServerConnection(), PhoneConnection()
    authenticate(server, phone, AuthType.PASSWORD, lambda p: p.authenticate(DEVICE, password="x"))
    assert only(deliver(server.delete_certificate(), phone)) == DeleteCertificateRequest()
    assert only(deliver(phone.acknowledge(), server)) == DeleteCertificateResponse(reason=Reason.UPDATE_CERTIFICATE)
    finish(server, phone, Reason.UPDATE_CERTIFICATE)


def test_no_pending_operation() -> None:
    server, phone = CapfServerConnection(), PhoneConnection()
    authenticate(server, phone, AuthType.NO_PASSWORD, lambda p: p.authenticate(DEVICE))
    finish(server, phone, Reason.NO_ACTION)


def test_unknown_device() -> None:
    server, phone = CapfServerConnection(), PhoneConnection()
    authenticate(server, phone, AuthType.NONE, lambda p: p.authenticate(DEVICE))
    end = only(deliver(server.end_session(Reason.UNKNOWN_DEVICE), phone))
    assert isinstance(end, EndSession) and not end.succeeded and end.reason == Reason.UNKNOWN_DEVICE


def test_wrong_authentication_string() -> None:
    server, phone = CapfServerConnection(), PhoneConnection()
    response = authenticate(server, phone, AuthType.PASSWORD, lambda p: p.authenticate(DEVICE, password="1235"))
    with pytest.raises(CapfAuthenticationError, match="authentication string") as info:
        check(response, AuthType.PASSWORD, server, password="1234")
    assert info.value.capf_code == 3 and "1234" not in str(info.value) and "1235" not in str(info.value)
    end = only(deliver(server.end_session(Reason.INVALID_ELEMENT), phone))
    assert isinstance(end, EndSession) and not end.succeeded


@pytest.mark.parametrize(
    ("cred_name", "issuer_ok", "fragment"),
    [
        ("lsc_expired", True, "valid from"),
        ("lsc_rsa", False, "not among the trusted"),
        ("lsc_other_device", True, "does not name the device"),
    ],
)
def test_invalid_lsc(cred_name: str, issuer_ok: bool, fragment: str) -> None:
    pki = phone_pki()
    cred = getattr(pki, cred_name)
    server, phone = CapfServerConnection(), PhoneConnection()
    response = authenticate(
        server, phone, AuthType.LSC, lambda p: p.authenticate(DEVICE, certificate=cred.cert, private_key=cred.key)
    )
    issuers = [pki.capf_ca.cert] if issuer_ok else [pki.other_ca.cert, pki.mic_ca.cert]
    with pytest.raises(CapfAuthenticationError, match=fragment) as info:
        verify_auth_response(response, mode=AuthType.LSC, session_id=server.session_id or 0, lsc_issuers=issuers)
    assert info.value.capf_code == 4
    only(deliver(server.end_session(Reason.INVALID_ELEMENT), phone))


def test_invalid_mic_and_missing_certificate() -> None:
    pki = phone_pki()
    server, phone = CapfServerConnection(), PhoneConnection()
    response = authenticate(
        server,
        phone,
        AuthType.MIC,
        lambda p: p.authenticate(
            DEVICE, certificate=pki.mic_ec.cert, private_key=pki.mic_ec.key, certificate_type=CertificateType.MIC
        ),
    )
    with pytest.raises(CapfAuthenticationError) as info:
        verify_auth_response(response, mode=AuthType.MIC, session_id=1, mic_issuers=[pki.other_ca.cert])
    assert info.value.capf_code == 5
    bare = AuthResponse(device_name=DEVICE, password="")
    for mode, code in ((AuthType.LSC, 4), (AuthType.MIC, 5)):
        with pytest.raises(CapfAuthenticationError, match="no certificate") as info:
            verify_auth_response(bare, mode=mode, session_id=1)
        assert info.value.capf_code == code


@pytest.mark.parametrize("which", ["sha1", "sha512", "both_missing", "wrong_key"])
def test_bad_signature(which: str) -> None:
    pki = phone_pki()
    lsc = pki.lsc_rsa
    server, phone = CapfServerConnection(), PhoneConnection()
    key = pki.rsa_key if which == "wrong_key" else lsc.key
    response = authenticate(
        server, phone, AuthType.LSC, lambda p: p.authenticate(DEVICE, certificate=lsc.cert, private_key=key)
    )
    assert response.signed_data is not None and response.sha2_signed_data is not None
    flipped = bytes([response.signed_data[0] ^ 1]) + response.signed_data[1:]
    if which == "sha1":
        response = dataclasses.replace(response, signed_data=flipped)
    elif which == "sha512":
        sig = response.sha2_signed_data.signature if response.sha2_signed_data else b""
        tampered = HashedSignature(HashId.SHA512, sig[:-1] + bytes([sig[-1] ^ 1]))
        response = dataclasses.replace(response, sha2_signed_data=tampered)
    elif which == "both_missing":
        response = dataclasses.replace(response, signed_data=None, sha2_signed_data=None)
    with pytest.raises(CapfAuthenticationError) as info:
        check(response, AuthType.LSC, server)
    assert info.value.capf_code == 6


def test_late_request_is_refused_with_capf_op_fail_late_request() -> None:
    # CUCM's "Operation Completes By" deadline passed: CAPF refuses the operation (CAPF_OP_FAIL_LATE_REQUEST).
    deadline = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    server, phone = CapfServerConnection(), PhoneConnection()
    response = authenticate(server, phone, AuthType.PASSWORD, lambda p: p.authenticate(DEVICE, password="1234"))
    with pytest.raises(CapfAuthenticationError, match="Operation Completes By") as info:
        check(response, AuthType.PASSWORD, server, password="1234", complete_by=deadline)
    assert info.value.capf_code == CapfOperationResult.CAPF_OP_FAIL_LATE_REQUEST
    assert "2020-01-01" in info.value.cause and "schedule" in info.value.hint
    # the deadline is checked first: even the null string mode is refused after it
    with pytest.raises(CapfAuthenticationError) as late:
        check(response, AuthType.NO_PASSWORD, server, complete_by=deadline, now=deadline + dt.timedelta(seconds=1))
    assert late.value.capf_code == CapfOperationResult.CAPF_OP_FAIL_LATE_REQUEST
    # before the deadline (a naive time counts as UTC) the phone is accepted
    assert check(response, AuthType.PASSWORD, server, password="1234", complete_by=dt.datetime(2999, 1, 1)) is None
    assert check(response, AuthType.NO_PASSWORD, server, complete_by=deadline, now=deadline) is None
    end = only(deliver(server.end_session(Reason.INVALID_ELEMENT), phone))
    assert isinstance(end, EndSession) and end.reason == Reason.INVALID_ELEMENT and not end.succeeded


def test_lsc_of_a_longer_device_name_or_a_nameless_response_is_refused() -> None:
    pki = phone_pki()
    look_alike = issue(f"CP-8865-A{DEVICE}", issuer=pki.capf_ca)  # ends with DEVICE, names another device
    server, phone = CapfServerConnection(), PhoneConnection()
    response = authenticate(
        server,
        phone,
        AuthType.LSC,
        lambda p: p.authenticate(DEVICE, certificate=look_alike.cert, private_key=look_alike.key),
    )
    with pytest.raises(CapfAuthenticationError, match="does not name the device") as info:
        check(response, AuthType.LSC, server)
    assert info.value.capf_code == CapfOperationResult.CAPF_OP_FAIL_INVALID_LSC
    # a response without DEVICE_NAME, signed over an empty name, must not pass with any device's LSC
    lsc = pki.lsc_rsa
    nameless = AuthResponse(password="")
    signed_data, sha2 = make_auth_signatures("", lsc.cert, lsc.key)
    nameless = dataclasses.replace(
        nameless,
        certificate=CertificateElement.from_certificate(lsc.cert),
        signed_data=signed_data,
        sha2_signed_data=sha2,
    )
    with pytest.raises(CapfAuthenticationError, match="no device name") as info:
        check(nameless, AuthType.LSC, server)
    assert info.value.capf_code == CapfOperationResult.CAPF_OP_FAIL_INVALID_CRENDENTIALS
    # both common name forms of the right device pass
    for cred in (pki.lsc_rsa, pki.lsc_ec):
        signed_data, sha2 = make_auth_signatures(DEVICE, cred.cert, cred.key)
        good = AuthResponse(
            device_name=DEVICE,
            password="",
            certificate=CertificateElement.from_certificate(cred.cert),
            signed_data=signed_data,
            sha2_signed_data=sha2,
        )
        assert check(good, AuthType.LSC, server) == cred.cert


def test_phone_reports_failures() -> None:
    server, phone = CapfServerConnection(), PhoneConnection()
    authenticate(server, phone, AuthType.NO_PASSWORD, lambda p: p.authenticate(DEVICE))
    deliver(server.request_csr(), phone)
    failed = only(deliver(phone.fail(Reason.INVALID_ELEMENT), server))
    assert failed == SignCertificateResponse(reason=Reason.INVALID_ELEMENT) and not failed.succeeded
    with pytest.raises(RemoteProtocolError, match="no CSR"):
        failed.load_csr()
    with pytest.raises(LocalProtocolError, match="STORE_CERTIFICATE_REQUEST"):
        server.store_certificate(phone_pki().lsc_rsa.cert)  # no key arrived yet
    deliver(server.request_public_key(), phone)
    failed_key = only(deliver(phone.fail(), server))
    assert isinstance(failed_key, KeyGenerateResponse) and not failed_key.succeeded
    with pytest.raises(RemoteProtocolError, match="no PUBLIC_KEY"):
        failed_key.load_public_key()
    finish(server, phone, Reason.INVALID_ELEMENT)


def test_phone_refuses_to_store() -> None:
    pki = phone_pki()
    server, phone = CapfServerConnection(), PhoneConnection()
    authenticate(server, phone, AuthType.NO_PASSWORD, lambda p: p.authenticate(DEVICE))
    deliver(server.request_public_key(), phone)
    deliver(phone.send_public_key(pki.rsa_key.public_key()), server)
    deliver(server.store_certificate(pki.lsc_rsa.cert), phone)
    refused = only(deliver(phone.fail(Reason.INVALID_ELEMENT), server))
    assert refused == StoreCertificateResponse(reason=Reason.INVALID_ELEMENT)
    finish(server, phone, Reason.INVALID_ELEMENT)


def test_csr_with_a_bad_signature() -> None:
    pki = phone_pki()
    server, phone = CapfServerConnection(), PhoneConnection()
    authenticate(server, phone, AuthType.NO_PASSWORD, lambda p: p.authenticate(DEVICE))
    deliver(server.request_csr(), phone)
    der = bytearray(make_csr(DEVICE, pki.rsa_key).public_bytes(Encoding.DER))
    der[-1] ^= 1  # inside the signature
    event = only(deliver(phone.send_csr(bytes(der)), server))
    assert isinstance(event, SignCertificateResponse)
    with pytest.raises(CapfSignatureError, match="CSR signature"):
        event.load_csr()
    garbage = SignCertificateResponse(reason=Reason.UPDATE_CERTIFICATE, csr=b"\x30\x00")
    with pytest.raises(RemoteProtocolError, match="PKCS#10"):
        garbage.load_csr()


# --- protocol errors ---------------------------------------------------------------------------------------------


def test_out_of_turn_sends_are_local_errors() -> None:
    server, phone = CapfServerConnection(), PhoneConnection()
    with pytest.raises(LocalProtocolError):
        server.request_csr()  # before AUTH_REQUEST
    with pytest.raises(LocalProtocolError):
        server.end_session()  # AUTH_REQUEST comes first
    with pytest.raises(LocalProtocolError):
        phone.authenticate(DEVICE)  # before AUTH_REQUEST
    deliver(server.start(), phone)
    with pytest.raises(LocalProtocolError, match="may not send AUTH_REQUEST"):
        server.start()
    with pytest.raises(LocalProtocolError):
        phone.send(EndSession(reason=0))  # only CAPF ends sessions
    with pytest.raises(LocalProtocolError, match="device name"):
        phone.send(AuthResponse(device_name=""))
    with pytest.raises(LocalProtocolError, match="no CAPF request"):
        phone.fail()
    deliver(phone.authenticate(DEVICE), server)
    deliver(server.request_public_key(), phone)
    deliver(phone.send_public_key(phone_pki().rsa_key.public_key()), server)
    with pytest.raises(LocalProtocolError, match="without a certificate"):
        server.send(StoreCertificateRequest())
    server.end_session(Reason.NO_ACTION)
    with pytest.raises(LocalProtocolError):
        server.end_session()
    assert server.may_send == frozenset()


def test_capf_may_give_up_while_waiting() -> None:
    server, phone = CapfServerConnection(), PhoneConnection()
    authenticate(server, phone, AuthType.NO_PASSWORD, lambda p: p.authenticate(DEVICE))
    deliver(server.request_public_key(), phone)
    assert Command.END_SESSION in server.may_send
    end = only(deliver(server.end_session(Reason.INVALID_ELEMENT), phone))
    assert isinstance(end, EndSession)
    assert phone.state is SessionState.CLOSED


def test_unexpected_message_is_a_remote_error_and_sticks() -> None:
    server, phone = CapfServerConnection(session_id=5), PhoneConnection()
    deliver(server.start(), phone)
    server.receive_data(KeyGenerateResponse(public_key=b"x").encode(5))
    with pytest.raises(RemoteProtocolError, match="received KEY_GENERATE_RESPONSE while expecting AUTH_RESPONSE"):
        server.next_event()
    assert server.state is SessionState.ERROR
    with pytest.raises(RemoteProtocolError, match="already failed"):
        server.next_event()
    with pytest.raises(LocalProtocolError):
        server.end_session()


def test_phone_rejects_a_response_command() -> None:
    phone = PhoneConnection()
    phone.receive_data(AuthResponse(device_name=DEVICE).encode(1))
    with pytest.raises(RemoteProtocolError, match="expecting AUTH_REQUEST"):
        phone.next_event()


def test_required_elements() -> None:
    server = CapfServerConnection(session_id=5)
    server.start()
    server.receive_data(AuthResponse(device_name=None).encode(5))
    with pytest.raises(RemoteProtocolError, match="DEVICE_NAME"):
        server.next_event()
    server2, phone = CapfServerConnection(session_id=6), PhoneConnection()
    authenticate(server2, phone, AuthType.NONE, lambda p: p.authenticate(DEVICE))
    server2.request_public_key()
    server2.receive_data(KeyGenerateResponse().encode(6))
    with pytest.raises(RemoteProtocolError, match="neither"):
        server2.next_event()
    phone2 = PhoneConnection()
    deliver(AuthRequest().encode(9), phone2)
    phone2.authenticate(DEVICE)
    phone2.receive_data(StoreCertificateRequest().encode(9))
    with pytest.raises(RemoteProtocolError):
        phone2.next_event()  # a store before any key exchange is out of order


def test_session_id_mismatch() -> None:
    server, phone = CapfServerConnection(session_id=7), PhoneConnection()
    deliver(server.start(), phone)
    server.receive_data(AuthResponse(device_name=DEVICE).encode(8))
    with pytest.raises(SessionMismatchError):
        server.next_event()
    phone.receive_data(EndSession(reason=0).encode(8))
    with pytest.raises(SessionMismatchError):
        phone.next_event()


def test_peer_closes_mid_message() -> None:
    server, phone = CapfServerConnection(), PhoneConnection()
    data = server.start()
    phone.receive_data(data[:-1])
    assert phone.next_event() is NEED_DATA
    phone.receive_data(b"")
    with pytest.raises(FramingError, match="incomplete"):
        phone.next_event()
    with pytest.raises(LocalProtocolError):
        phone.receive_data(b"more")


def test_peer_closes_between_messages() -> None:
    server, phone = CapfServerConnection(), PhoneConnection()
    authenticate(server, phone, AuthType.NO_PASSWORD, lambda p: p.authenticate(DEVICE))
    deliver(server.request_csr(), phone)
    assert deliver(b"", server) == [ConnectionClosed()]
    assert server.state is SessionState.CLOSED


def test_garbage_is_a_framing_error() -> None:
    server = CapfServerConnection()
    server.start()
    server.receive_data(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(FramingError, match="protocol id"):
        server.next_event()


def test_unsupported_command_from_peer() -> None:
    phone = PhoneConnection()
    phone.receive_data(bytes.fromhex("55 12 00000001 0000"))  # STATUS_REQUEST
    with pytest.raises(RemoteProtocolError):
        phone.next_event()


def test_repeated_operations_in_one_session() -> None:
    server, phone = CapfServerConnection(), PhoneConnection()
    authenticate(server, phone, AuthType.NO_PASSWORD, lambda p: p.authenticate(DEVICE))
    deliver(server.fetch_certificate(), phone)
    deliver(phone.send_certificates(), server)
    install_by_csr(server, phone)
    deliver(server.delete_certificate(), phone)
    deliver(phone.acknowledge(), server)
    finish(server, phone, Reason.UPDATE_CERTIFICATE)


def test_session_id_range() -> None:
    with pytest.raises(LocalProtocolError):
        CapfServerConnection(session_id=2**32)
    assert 0 <= (CapfServerConnection().session_id or 0) < 2**32


# --- over a real TLS connection on loopback -------------------------------------------------------------------------


def _next(connection: CapfServerConnection | PhoneConnection, sock: ssl.SSLSocket) -> Event:
    while isinstance(event := connection.next_event(), NeedData):
        connection.receive_data(sock.recv(7))  # small reads: messages arrive in pieces
    return event


def test_install_over_tls_on_loopback(pki: TestPki) -> None:
    """The reference app's shape: CAPF on a TLS listener, the phone as client, the CSR install end to end."""
    phone_creds = phone_pki()
    outcome: dict[str, object] = {}

    def capf_side(listener: socket.socket) -> None:
        raw, _ = listener.accept()
        raw.settimeout(30)
        with pki.server_context().wrap_socket(raw, server_side=True) as sock:
            capf = CapfServerConnection()
            sock.sendall(capf.start(AuthType.PASSWORD))
            auth = _next(capf, sock)
            assert isinstance(auth, AuthResponse)
            verify_auth_response(auth, mode=AuthType.PASSWORD, session_id=capf.session_id or 0, password="1234")
            sock.sendall(capf.request_csr(key_size=2048))
            while isinstance(event := _next(capf, sock), RequestInProgress):
                pass
            assert isinstance(event, SignCertificateResponse)
            csr = event.load_csr()
            lsc = issue_lsc(phone_creds.capf_ca, auth.device_name or "", csr.public_key())
            sock.sendall(capf.store_certificate(lsc))
            stored = _next(capf, sock)
            assert isinstance(stored, StoreCertificateResponse)
            sock.sendall(capf.end_session(Reason.UPDATE_CERTIFICATE if stored.succeeded else Reason.INVALID_ELEMENT))
            outcome["lsc"] = lsc
            outcome["closed"] = _next(capf, sock)

    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = threading.Thread(target=capf_side, args=(listener,), daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
            pki.client_context().wrap_socket(raw, server_hostname="localhost") as sock,
        ):
            phone = PhoneConnection()
            assert isinstance(_next(phone, sock), AuthRequest)
            sock.sendall(phone.authenticate(DEVICE, password="1234"))
            assert isinstance(_next(phone, sock), SignCertificateRequest)
            sock.sendall(phone.request_in_progress())
            sock.sendall(phone.send_csr(make_csr(DEVICE, phone_creds.rsa_key)))
            store = _next(phone, sock)
            assert isinstance(store, StoreCertificateRequest) and store.certificate is not None
            stored_lsc = store.certificate.load()
            sock.sendall(phone.acknowledge())
            end = _next(phone, sock)
            assert end == EndSession(reason=Reason.UPDATE_CERTIFICATE)
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert outcome["lsc"] == stored_lsc
    assert stored_lsc.public_key() == phone_creds.rsa_key.public_key()
    assert outcome["closed"] == ConnectionClosed()


def test_jabber_version_2_is_accepted_and_other_versions_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="capf_common")
    for version, warned in ((2, False), (3, False), (5, True)):
        caplog.clear()
        server, phone = CapfServerConnection(), PhoneConnection()

        def answer(p: PhoneConnection, version: int = version) -> bytes:
            return p.authenticate(DEVICE, password="9876", version=version)

        response = authenticate(server, phone, AuthType.PASSWORD, answer)
        assert response.version == version
        assert server.may_send >= {Command.SIGN_CERTIFICATE_REQUEST, Command.END_SESSION}
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert bool(warnings) is warned, warnings
        assert all(str(version) in r.getMessage() and DEVICE in r.getMessage() for r in warnings)
        assert "9876" not in caplog.text  # the authentication string never reaches a log
