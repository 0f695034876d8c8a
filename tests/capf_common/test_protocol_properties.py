"""Property tests: the CAPF codec and both state machines on any bytes give results or a CapfError, nothing else."""

from __future__ import annotations

import contextlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from capf_common import (
    AuthType,
    CapfError,
    CapfServerConnection,
    Element,
    ElementTag,
    Message,
    MessageDecoder,
    NeedData,
    PhoneConnection,
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
