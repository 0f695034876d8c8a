"""The CAPF codec: header, TLV elements, element layouts, typed messages, streaming reassembly, framing errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capf_common import (
    AuthRequest,
    AuthResponse,
    CapfError,
    CertificateElement,
    CertificateType,
    Command,
    Curve,
    DeleteCertificateRequest,
    DeleteCertificateResponse,
    Element,
    ElementTag,
    EndSession,
    FetchCertificateRequest,
    FetchCertificateResponse,
    FramingError,
    HashedSignature,
    HashId,
    KeyGenerateRequest,
    KeyGenerateResponse,
    KeyType,
    LocalProtocolError,
    Message,
    MessageDecoder,
    Reason,
    RemoteProtocolError,
    RequestInProgress,
    SessionMismatchError,
    SignCertificateRequest,
    SignCertificateResponse,
    StoreCertificateRequest,
    StoreCertificateResponse,
    SudiData,
    decode_message,
    decode_messages,
    describe_element,
    parse_message,
)
from capf_common._messages import MESSAGE_TYPES, CapfMessage

DER = bytes.fromhex("3003020101")  # a stand-in DER blob; the codec does not parse certificates


def test_header_vector_from_real_cucm_trace() -> None:
    # Jabber4Linux: a real CUCM's first message carried only VERSION=3.
    data = bytes.fromhex("55 01 12345678 0004 07 0001 03")
    message = decode_message(data)
    assert message == Message(Command.AUTH_REQUEST, 0x12345678, (Element(ElementTag.VERSION, b"\x03"),))
    assert message.encode() == data
    typed = parse_message(message)
    assert typed == AuthRequest(version=3, auth_type=None)


def test_element_vectors_from_the_notes() -> None:
    name = Element(ElementTag.DEVICE_NAME, b"CSF123\x00")
    assert name.encode() == bytes.fromhex("0d 0007") + b"CSF123\x00"
    assert KeyGenerateRequest(key_size=2048).to_message(1).elements[0].encode() == bytes.fromhex("0a 0002 0800")
    der = bytes(0x3D3)
    element = Element(ElementTag.CERTIFICATE, CertificateElement(der).encode())
    assert element.encode()[:8] == bytes.fromhex("04 03d8 01 03d5 0001")


@pytest.mark.parametrize("command", list(Command))
def test_every_command_round_trips_as_generic_message(command: Command) -> None:
    message = Message(command, 0xFFFFFFFF, (Element(ElementTag.REASON, b"\x01"), Element(200, b"raw")))
    data = message.encode()
    assert data[:2] == bytes([0x55, command])
    assert decode_message(data) == message
    assert decode_message(data).encode() == data


FULL_MESSAGES: list[CapfMessage] = [
    AuthRequest(version=3, auth_type=1),
    AuthResponse(
        reason=Reason.UPDATE_CERTIFICATE,
        version=2,
        device_name="SEP001122334455",
        password="s3cr\u00e9t",
        certificate=CertificateElement(DER, CertificateType.MIC),
        signed_data=b"\x01" * 256,
        sha2_signed_data=HashedSignature(HashId.SHA512, b"\x02" * 256),
        sudi_data=SudiData(DER, (HashedSignature(HashId.SHA1, b"a"), HashedSignature(HashId.SHA512, b"b"))),
    ),
    KeyGenerateRequest(key_type=KeyType.EC, key_size=2048, curve=Curve.SECP384R1),
    KeyGenerateResponse(reason=Reason.UPDATE_CERTIFICATE, public_key=DER),
    SignCertificateRequest(key_type=KeyType.RSA, key_size=4096, curve=Curve.SECP521R1, digest=HashId.SHA256),
    SignCertificateResponse(reason=Reason.UPDATE_CERTIFICATE, csr=DER),
    RequestInProgress(),
    StoreCertificateRequest(certificate_type=CertificateType.LSC, certificate=CertificateElement(DER)),
    StoreCertificateResponse(reason=Reason.UPDATE_CERTIFICATE),
    FetchCertificateRequest(certificate_type=CertificateType.MIC),
    FetchCertificateResponse(
        reason=Reason.UPDATE_CERTIFICATE,
        certificates=(CertificateElement(DER), CertificateElement(DER + b"\x00", CertificateType.MIC)),
    ),
    DeleteCertificateRequest(certificate_type=CertificateType.LSC),
    DeleteCertificateResponse(reason=Reason.INVALID_ELEMENT),
    EndSession(reason=Reason.UNKNOWN_DEVICE),
]


def test_every_typed_command_is_covered() -> None:
    assert {type(m) for m in FULL_MESSAGES} == set(MESSAGE_TYPES.values())


@pytest.mark.parametrize("typed", FULL_MESSAGES, ids=lambda m: type(m).__name__)
def test_every_typed_message_round_trips(typed: CapfMessage) -> None:
    data = typed.encode(42)
    assert parse_message(decode_message(data)) == typed
    assert parse_message(decode_message(data)).encode(42) == data


@pytest.mark.parametrize("typed", FULL_MESSAGES, ids=lambda m: type(m).__name__)
def test_unknown_tags_are_kept_in_typed_messages(typed: CapfMessage) -> None:
    extra = (Element(0x99, b"future"), Element(14, b""))
    data = type(typed).from_message(typed.to_message(5)).to_message(5)
    with_extra = Message(data.command, 5, (*data.elements, *extra))
    parsed = parse_message(decode_message(with_extra.encode()))
    assert parsed.extra == extra
    assert parsed.encode(5) == with_extra.encode()


def test_repeated_single_valued_tag_goes_to_extra() -> None:
    message = Message(Command.END_SESSION, 1, (Element(1, b"\x01"), Element(1, b"\x00")))
    parsed = parse_message(message)
    assert parsed == EndSession(reason=Reason.UPDATE_CERTIFICATE, extra=(Element(1, b"\x00"),))


def test_unknown_values_stay_numbers() -> None:
    parsed = parse_message(Message(Command.END_SESSION, 1, (Element(ElementTag.REASON, b"\x2a"),)))
    assert isinstance(parsed, EndSession)
    assert parsed.reason == 42 and not isinstance(parsed.reason, Reason)
    assert not parsed.succeeded
    assert decode_message(Message(0xEE, 1).encode()).name == "UNKNOWN(238)"


ELEMENT_SAMPLES = [
    Element(ElementTag.REASON, b"\x09"),
    Element(ElementTag.REASON_INFO, b"x\x00"),
    Element(ElementTag.CERTIFICATE_TYPE, b"\x02"),
    Element(ElementTag.CERTIFICATE, CertificateElement(DER).encode()),
    Element(ElementTag.CERTIFICATE_ID, b"\x00\x01"),
    Element(ElementTag.SIGNED_DATA, b"sig"),
    Element(ElementTag.VERSION, b"\x03"),
    Element(ElementTag.AUTH_TYPE, b"\x04"),
    Element(ElementTag.PUBLIC_KEY, DER),
    Element(ElementTag.KEY_SIZE, b"\x08\x00"),
    Element(ElementTag.PASSWORD, b"1234\x00"),
    Element(ElementTag.RETRY_DELAY, b"\x00\x1e"),
    Element(ElementTag.DEVICE_NAME, b"SEP001122334455\x00"),
    Element(ElementTag.SUDI_DATA, SudiData(DER, (HashedSignature(1, b"s"),)).encode()),
    Element(ElementTag.KEY_TYPE, b"\x01"),
    Element(ElementTag.CURVE, b"\x02"),
    Element(ElementTag.DIGEST_TYPE, b"\x03"),
    Element(ElementTag.SHA2_SIGNED_DATA, HashedSignature(3, b"sig").encode()),
    Element(ElementTag.CSR, DER),
]


@pytest.mark.parametrize("element", ELEMENT_SAMPLES, ids=lambda e: e.name)
def test_every_element_round_trips_and_describes(element: Element) -> None:
    message = Message(Command.AUTH_RESPONSE, 3, (element,))
    assert decode_message(message.encode()) == message
    description = describe_element(element)
    assert description["name"] == element.name
    assert "error" not in description


def test_every_element_tag_is_in_the_round_trip_list() -> None:
    assert {e.tag for e in ELEMENT_SAMPLES} == set(ElementTag)


def test_password_never_shown() -> None:
    element = Element(ElementTag.PASSWORD, b"hunter2\x00")
    assert "hunter2" not in repr(element)
    assert "hunter2" not in repr(AuthResponse(device_name="SEP1", password="hunter2"))
    assert describe_element(element)["value"] == "<hidden>"


def test_nested_certificate_layout() -> None:
    value = CertificateElement(b"\x30\x00", CertificateType.LSC).encode()
    assert value == bytes.fromhex("01 0004 0001 3000")
    assert CertificateElement.decode(value) == CertificateElement(b"\x30\x00", CertificateType.LSC)


def test_sudi_layout() -> None:
    sudi = SudiData(b"C", (HashedSignature(HashId.SHA1, b"S1"), HashedSignature(HashId.SHA512, b"S5")))
    assert sudi.encode() == bytes.fromhex("00 0001 43 01 0002 5331 03 0002 5335")
    assert sudi.signature(HashId.SHA512) == b"S5"
    assert sudi.signature(HashId.SHA256) is None


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (bytes.fromhex("56 01 00000001 0000"), "protocol id 0x56"),
        (bytes.fromhex("55 01 00000001 0005 07 0001 03"), "body length 5"),
        (bytes.fromhex("55 01 00000001 0004 07 0002 03 ff"[:-3]), "declares 2 bytes"),
        (bytes.fromhex("55 01 00000001 0002 07 00"), "inside an element header"),
        (bytes.fromhex("55 01 0000"), "incomplete"),
        (bytes.fromhex("55 0f 00000001 0000 55 0f 00000001 0000"), "found 2"),
        (b"", "found 0"),
    ],
)
def test_framing_errors(data: bytes, fragment: str) -> None:
    with pytest.raises(FramingError, match=fragment) as info:
        decode_message(data)
    assert info.value.hint
    assert isinstance(info.value, CapfError)


def test_session_id_mismatch() -> None:
    data = EndSession(reason=0).encode(7)
    assert decode_messages(data, expected_session_id=7)[0].session_id == 7
    with pytest.raises(SessionMismatchError) as info:
        decode_messages(data, expected_session_id=8)
    assert (info.value.expected, info.value.received) == (8, 7)


@pytest.mark.parametrize(
    "element",
    [
        Element(ElementTag.REASON, b""),
        Element(ElementTag.KEY_SIZE, b"\x08"),
        Element(ElementTag.DEVICE_NAME, b"SEP1"),
        Element(ElementTag.DEVICE_NAME, b"\xff\x00"),
        Element(ElementTag.CERTIFICATE, bytes.fromhex("01 0005 0001 30")),
        Element(ElementTag.CERTIFICATE, bytes.fromhex("02 0002 0001")),
        Element(ElementTag.SUDI_DATA, bytes.fromhex("01 0001 00")),
        Element(ElementTag.SHA2_SIGNED_DATA, bytes.fromhex("03 0001 00 03 0001 00")),
    ],
    ids=lambda e: e.name,
)
def test_bad_element_values_are_framing_errors(element: Element) -> None:
    command = Command.KEY_GENERATE_REQUEST if element.tag == ElementTag.KEY_SIZE else Command.AUTH_RESPONSE
    message = Message(command, 1, (element,))
    with pytest.raises(FramingError):
        parse_message(message)
    assert describe_element(element)["raw"] is True


def test_unsupported_command_is_a_remote_protocol_error() -> None:
    with pytest.raises(RemoteProtocolError, match="STATUS_REQUEST"):
        parse_message(Message(Command.STATUS_REQUEST, 1))


@pytest.mark.parametrize(
    "message",
    [
        Message(256, 1),
        Message(1, 2**32),
        Message(1, 1, (Element(300, b""),)),
        Message(1, 1, (Element(1, bytes(70000)),)),
        Message(1, 1, (Element(1, bytes(40000)), Element(1, bytes(40000)))),
    ],
)
def test_encoding_limits_are_local_errors(message: Message) -> None:
    with pytest.raises(LocalProtocolError):
        message.encode()


def test_typed_values_out_of_range_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        KeyGenerateRequest(key_size=70000).encode(1)
    with pytest.raises(LocalProtocolError):
        EndSession(reason=300).encode(1)


def test_stream_reassembly_byte_by_byte() -> None:
    stream = b"".join(m.encode(9) for m in FULL_MESSAGES)
    decoder = MessageDecoder(expected_session_id=9)
    received: list[Message] = []
    for i in range(len(stream)):
        decoder.feed(stream[i : i + 1])
        while (message := decoder.next_message()) is not None:
            received.append(message)
    decoder.close()
    assert [parse_message(m) for m in received] == FULL_MESSAGES
    assert decode_messages(stream) == received


def test_stream_close_mid_message() -> None:
    decoder = MessageDecoder()
    data = EndSession(reason=Reason.NO_ACTION).encode(1)
    decoder.feed(data[:-1])
    assert decoder.next_message() is None
    assert decoder.pending == len(data) - 1
    with pytest.raises(FramingError, match="incomplete") as info:
        decoder.close()
    assert "body length 4 reaches beyond the 3 bytes that follow the header" in info.value.cause
    short = MessageDecoder()
    short.feed(data[:5])
    with pytest.raises(FramingError, match="5 bytes of an incomplete CAPF message"):
        short.close()


# --- capf decode -------------------------------------------------------------------------------------------------


def _stream() -> bytes:
    return AuthRequest(auth_type=1).encode(1) + AuthResponse(
        reason=Reason.UPDATE_CERTIFICATE, device_name="SEP001122334455", password="hunter2"
    ).encode(1)


def test_cli_decode_hex_argument() -> None:
    from click.testing import CliRunner

    from capf_common._cli_app import cli

    result = CliRunner().invoke(cli, ["decode", _stream().hex(" ")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "message 1 at byte 0: AUTH_REQUEST (1), session 0x00000001, body 8 bytes"
    assert "  AUTH_TYPE (8), 1 bytes: PASSWORD (1)" in lines
    assert "  DEVICE_NAME (13), 16 bytes: 'SEP001122334455'" in lines
    assert "hunter2" not in result.output


def test_cli_decode_files_stdin_and_json(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from capf_common._cli_app import cli

    binary, hex_file = tmp_path / "stream.bin", tmp_path / "stream.hex"
    binary.write_bytes(_stream())
    hex_file.write_text(_stream().hex(":") + "\n")
    outputs = [CliRunner().invoke(cli, ["decode", "--json", str(path)]) for path in (binary, hex_file)]
    outputs.append(CliRunner().invoke(cli, ["decode", "--json", "-"], input=_stream()))
    for result in outputs:
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert data["error"] is None
        assert [m["name"] for m in data["messages"]] == ["AUTH_REQUEST", "AUTH_RESPONSE"]
        assert data["messages"][1]["offset"] == 16
        assert "hunter2" not in result.output
    assert outputs[0].output == outputs[1].output == outputs[2].output


def test_cli_decode_certificate_and_unknown_elements() -> None:
    from click.testing import CliRunner

    from capf_common._cli_app import cli
    from tests.capf_common._protocol_support import phone_pki

    cert = phone_pki().lsc_rsa.cert
    message = Message(
        Command.STORE_CERTIFICATE_REQUEST,
        2,
        (Element(ElementTag.CERTIFICATE, CertificateElement.from_certificate(cert).encode()), Element(0x99, b"\x01")),
    )
    result = CliRunner().invoke(cli, ["decode", message.encode().hex()])
    assert result.exit_code == 0, result.output
    assert f"LSC certificate, {len(CertificateElement.from_certificate(cert).der)} bytes DER" in result.output
    assert "subject CN=SEP001122334455" in result.output
    assert "  UNKNOWN(153) (153), 1 bytes: hex 01" in result.output


@pytest.mark.parametrize(
    ("argument", "fragment"),
    [("not-hex", "neither a file nor hex"), ("55 01 0000", "incomplete"), ("56 01 00000001 0000", "protocol id")],
)
def test_cli_decode_bad_input(argument: str, fragment: str) -> None:
    from click.testing import CliRunner

    from capf_common._cli_app import cli

    result = CliRunner().invoke(cli, ["decode", argument])
    assert result.exit_code == 3
    assert fragment in result.output and "Fix:" in result.output


def test_cli_decode_prints_what_decoded_before_a_fault() -> None:
    from click.testing import CliRunner

    from capf_common._cli_app import cli

    data = _stream()[:-3]
    result = CliRunner().invoke(cli, ["decode", "--json", data.hex()])
    assert result.exit_code == 3
    payload = json.loads(result.output[: result.output.rindex("}") + 1])
    assert [m["name"] for m in payload["messages"]] == ["AUTH_REQUEST"]
    assert payload["error"]["offset"] == 16 and "incomplete" in payload["error"]["cause"]
    text = CliRunner().invoke(cli, ["decode", "55 0f 00 00 00 2a 00 09 01 00 01 00"])
    assert text.exit_code == 3
    assert "at byte 0: stream ended with an incomplete CAPF message" in text.output
    assert "body length 9 reaches beyond the 4 bytes" in text.output


def test_cli_decode_public_key_and_csr() -> None:
    from click.testing import CliRunner
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from cryptography.x509.oid import NameOID

    from capf_common._cli_app import cli

    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SEP001122334455")]))
        .sign(key, hashes.SHA256())
        .public_bytes(Encoding.DER)
    )
    data = KeyGenerateResponse(public_key=spki).encode(3) + SignCertificateResponse(reason=1, csr=csr).encode(3)
    data += SignCertificateResponse(csr=b"\x30\x00").encode(3)
    result = CliRunner().invoke(cli, ["decode", data.hex()])
    assert result.exit_code == 0, result.output
    assert "PUBLIC_KEY (9), 91 bytes: EC secp256r1 public key" in result.output
    assert "PKCS#10 for CN=SEP001122334455, EC secp256r1 key, signature valid" in result.output
    assert "CSR (128), 2 bytes: does not parse (ValueError)" in result.output
