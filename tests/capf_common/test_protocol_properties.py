"""Property tests: the CAPF codec and both state machines on any bytes give results or a CapfError, nothing else."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from capf_common import (
    AuthType,
    CapfError,
    CapfServerConnection,
    Element,
    ElementTag,
    KeyType,
    LocalProtocolError,
    Message,
    MessageDecoder,
    NeedData,
    PhoneConnection,
    Reason,
    SessionState,
    decode_messages,
    describe_element,
    parse_message,
)
from capf_common._messages import MESSAGE_TYPES

SETTINGS = settings(max_examples=250, deadline=None)

tags = st.one_of(st.sampled_from(list(ElementTag)), st.integers(0, 255))
elements = st.builds(Element, tags, st.binary(max_size=40))
messages = st.builds(
    Message,
    st.one_of(st.sampled_from(list(MESSAGE_TYPES)), st.integers(0, 255)),
    st.integers(0, 2**32 - 1),
    st.lists(elements, max_size=6).map(tuple),
)


def frame(command: int, session_id: int, body: bytes) -> bytes:
    return bytes([0x55, command]) + session_id.to_bytes(4, "big") + len(body).to_bytes(2, "big") + body


# bytes that are mostly CAPF-shaped, so the fuzzing reaches past the header checks
capf_like = st.one_of(
    st.binary(max_size=200),
    st.builds(frame, st.integers(0, 25), st.sampled_from([0, 1, 7]), st.binary(max_size=60)),
    st.lists(messages, max_size=4).map(lambda ms: b"".join(m.encode() for m in ms)),
)


@SETTINGS
@given(messages)
def test_encode_then_decode_is_identity(message: Message) -> None:
    data = message.encode()
    assert decode_messages(data) == [message]
    assert decode_messages(data)[0].encode() == data


@SETTINGS
@given(capf_like)
def test_decode_then_encode_is_identity_or_capf_error(data: bytes) -> None:
    try:
        decoded = decode_messages(data)
    except CapfError:
        return
    assert b"".join(m.encode() for m in decoded) == data


@SETTINGS
@given(capf_like, st.integers(1, 16))
def test_stream_decoder_in_pieces(data: bytes, chunk: int) -> None:
    decoder = MessageDecoder()
    received: list[Message] = []
    try:
        for i in range(0, len(data), chunk):
            decoder.feed(data[i : i + chunk])
            while (message := decoder.next_message()) is not None:
                received.append(message)
        decoder.close()
    except CapfError:
        return
    assert received == decode_messages(data)


@SETTINGS
@given(messages)
def test_typed_view_round_trips_or_capf_error(message: Message) -> None:
    try:
        typed = parse_message(message)
    except CapfError:
        return
    again = parse_message(typed.to_message(message.session_id))
    assert again == typed
    assert sorted(e.encode() for e in typed.to_message(1).elements) == sorted(e.encode() for e in message.elements)


@SETTINGS
@given(elements)
def test_describe_element_never_raises(element: Element) -> None:
    description = describe_element(element)
    json.dumps(description)
    assert description["length"] == len(element.value)


def drain(connection: CapfServerConnection | PhoneConnection, data: bytes, chunk: int) -> None:
    for i in range(0, len(data), chunk):
        connection.receive_data(data[i : i + chunk])
        for _ in range(100):
            if isinstance(connection.next_event(), NeedData):
                break
    connection.receive_data(b"")
    connection.next_event()


@SETTINGS
@given(capf_like, st.integers(1, 64), st.booleans())
def test_server_receive_data_gives_events_or_capf_error(data: bytes, chunk: int, started: bool) -> None:
    server = CapfServerConnection(session_id=1)
    if started:
        server.start(AuthType.PASSWORD)
    with contextlib.suppress(CapfError):
        drain(server, data, chunk)


@SETTINGS
@given(capf_like, st.integers(1, 64), st.booleans())
def test_phone_receive_data_gives_events_or_capf_error(data: bytes, chunk: int, authenticated: bool) -> None:
    phone = PhoneConnection()
    if authenticated:
        server = CapfServerConnection(session_id=1)
        phone.receive_data(server.start())
        phone.next_event()
        phone.authenticate("SEP001122334455")
    with contextlib.suppress(CapfError):
        drain(phone, data, chunk)


# --- both machines under arbitrary call sequences ----------------------------------------------------------------

SERVER_ACTIONS: dict[str, Callable[[CapfServerConnection], bytes]] = {
    "start": lambda s: s.start(AuthType.PASSWORD),
    "request_public_key": lambda s: s.request_public_key(),
    "request_ec_key": lambda s: s.request_public_key(KeyType.EC),
    "request_csr": lambda s: s.request_csr(),
    "store_certificate": lambda s: s.store_certificate(b"\x30\x03\x02\x01\x01"),
    "fetch_certificate": lambda s: s.fetch_certificate(),
    "delete_certificate": lambda s: s.delete_certificate(),
    "end_session": lambda s: s.end_session(Reason.NO_ACTION),
}
PHONE_ACTIONS: dict[str, Callable[[PhoneConnection], bytes]] = {
    "authenticate": lambda p: p.authenticate("SEP001122334455", password="1234"),
    "request_in_progress": lambda p: p.request_in_progress(),
    "send_public_key": lambda p: p.send_public_key(b"\x30\x00"),
    "send_csr": lambda p: p.send_csr(b"\x30\x00"),
    "acknowledge": lambda p: p.acknowledge(),
    "send_certificates": lambda p: p.send_certificates(),
    "fail": lambda p: p.fail(),
}
steps = st.lists(
    st.one_of(
        st.tuples(st.just("server"), st.sampled_from(sorted(SERVER_ACTIONS))),
        st.tuples(st.just("phone"), st.sampled_from(sorted(PHONE_ACTIONS))),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(steps)
def test_whatever_one_side_may_send_the_other_accepts(sequence: list[tuple[str, str]]) -> None:
    server, phone = CapfServerConnection(session_id=77), PhoneConnection()
    for role, action in sequence:
        sender: CapfServerConnection | PhoneConnection = server if role == "server" else phone
        receiver: CapfServerConnection | PhoneConnection = phone if role == "server" else server
        before = (sender.state, sender.may_send)
        try:
            data = SERVER_ACTIONS[action](server) if role == "server" else PHONE_ACTIONS[action](phone)
        except LocalProtocolError:
            assert (sender.state, sender.may_send) == before  # a refused send changes nothing
            continue
        receiver.receive_data(data)
        event = receiver.next_event()  # never raises: what one side may send, the other accepts
        assert not isinstance(event, NeedData)
        assert event == parse_message(decode_messages(data)[0])
        assert isinstance(receiver.next_event(), NeedData)
        states = {server.state, phone.state}
        assert states != {SessionState.SEND} and states != {SessionState.RECEIVE}, (server.state, phone.state)
        assert (server.state is SessionState.CLOSED) == (phone.state is SessionState.CLOSED)
