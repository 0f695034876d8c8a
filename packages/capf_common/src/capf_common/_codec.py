"""CAPF framing: the 8-byte header and the TLV body, with a streaming reassembler for partial reads.

This layer knows nothing about what an element means: a :class:`Message` is a command, a session id and
the raw elements in their order, so ``decode(encode(m)) == m`` and ``encode(decode(b)) == b`` for every
well-formed ``b``, unknown tags and commands included. Typed views live in ``_elements`` and ``_messages``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from capf_common._enums import HEADER_LENGTH, PROTOCOL_ID, Command, ElementTag, as_enum, enum_name
from capf_common._errors import FramingError, LocalProtocolError, SessionMismatchError

__all__ = ["Element", "Message", "MessageDecoder", "decode_message", "decode_messages"]

_HEADER = struct.Struct(">BBIH")
_ELEMENT_HEADER = struct.Struct(">BH")
_MAX_U16 = 0xFFFF
_MAX_U32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Element:
    """One body element: a tag byte and its value (at most 65535 bytes).

    Attributes:
        tag: The tag (:class:`ElementTag` when known, else the number).
        value: The value bytes, undecoded.
    """

    tag: int
    value: bytes

    @property
    def name(self) -> str:
        """The tag's name, ``"UNKNOWN(n)"`` for tags outside :class:`ElementTag`."""
        return enum_name(ElementTag, self.tag)

    def __repr__(self) -> str:
        shown = "<hidden>" if self.tag == ElementTag.PASSWORD else repr(self.value)
        return f"Element(tag={self.name}, value={shown})"

    def encode(self) -> bytes:
        """Return the element's wire form (``u8 tag, u16 length, value``).

        Raises:
            LocalProtocolError: The tag is not a byte or the value is longer than 65535 bytes.
        """
        if not 0 <= self.tag <= 0xFF:
            raise LocalProtocolError(f"element tag {self.tag} is not a byte", hint="use a tag from 0 to 255")
        if len(self.value) > _MAX_U16:
            raise LocalProtocolError(
                f"{self.name} value has {len(self.value)} bytes, more than an element can hold (65535)",
                hint="send a smaller value (a shorter certificate chain or key)",
            )
        return _ELEMENT_HEADER.pack(self.tag, len(self.value)) + self.value


@dataclass(frozen=True, slots=True)
class Message:
    """One CAPF message: header fields and the body's elements in wire order.

    Attributes:
        command: The command byte (:class:`Command` when known, else the number).
        session_id: The session id (u32) the server chose.
        elements: The body elements, in order; unknown tags are kept.
    """

    command: int
    session_id: int
    elements: tuple[Element, ...] = ()

    @property
    def name(self) -> str:
        """The command's name, ``"UNKNOWN(n)"`` for commands outside :class:`Command`."""
        return enum_name(Command, self.command)

    def find(self, tag: int) -> Element | None:
        """Return the first element with ``tag``, or ``None``."""
        return next((e for e in self.elements if e.tag == tag), None)

    def find_all(self, tag: int) -> tuple[Element, ...]:
        """Return every element with ``tag``, in order."""
        return tuple(e for e in self.elements if e.tag == tag)

    def encode(self) -> bytes:
        """Return the message's wire form: header and body in one buffer (phones stall on split writes).

        Raises:
            LocalProtocolError: A field does not fit its width (command byte, u32 session id, u16 body length).
        """
        if not 0 <= self.command <= 0xFF:
            raise LocalProtocolError(f"command {self.command} is not a byte", hint="use a command from 0 to 255")
        if not 0 <= self.session_id <= _MAX_U32:
            raise LocalProtocolError(
                f"session id {self.session_id} does not fit 32 bits", hint="use a session id from 0 to 2**32-1"
            )
        body = b"".join(e.encode() for e in self.elements)
        if len(body) > _MAX_U16:
            raise LocalProtocolError(
                f"{self.name} body has {len(body)} bytes, more than a message can hold (65535)",
                hint="send fewer or smaller elements",
            )
        return _HEADER.pack(PROTOCOL_ID, self.command, self.session_id, len(body)) + body


def _decode_body(body: bytes, command: int) -> tuple[Element, ...]:
    elements: list[Element] = []
    offset = 0
    while offset < len(body):
        if len(body) - offset < _ELEMENT_HEADER.size:
            raise FramingError(
                f"{enum_name(Command, command)} body ends inside an element header at byte {offset}",
                hint="the body length must cover whole elements; the sender's framing is wrong",
            )
        tag, length = _ELEMENT_HEADER.unpack_from(body, offset)
        offset += _ELEMENT_HEADER.size
        if length > len(body) - offset:
            raise FramingError(
                f"element {enum_name(ElementTag, tag)} declares {length} bytes, "
                f"but only {len(body) - offset} remain in the body",
                hint="the element is truncated; the sender's framing is wrong",
            )
        elements.append(Element(as_enum(ElementTag, tag), body[offset : offset + length]))
        offset += length
    return tuple(elements)


def _check_header(data: bytes | bytearray) -> tuple[int, int, int]:
    protocol_id, command, session_id, length = _HEADER.unpack_from(data, 0)
    if protocol_id != PROTOCOL_ID:
        raise FramingError(
            f"protocol id {protocol_id:#04x} where CAPF has {PROTOCOL_ID:#04x}",
            hint="these bytes are not a CAPF message: check the port (3804), TLS, and where the stream starts",
        )
    return command, session_id, length


class MessageDecoder:
    """Reassembles CAPF messages from bytes that arrive in pieces (partial TLS reads).

    Feed bytes with :meth:`feed`, take whole messages with :meth:`next_message`, and call :meth:`close` at end
    of stream to learn whether a message was cut off.

    Args:
        expected_session_id: When set, a message with another session id raises :class:`SessionMismatchError`.
    """

    def __init__(self, *, expected_session_id: int | None = None) -> None:
        self._buffer = bytearray()
        self.expected_session_id = expected_session_id

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a whole message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buffer += data

    def next_message(self) -> Message | None:
        """Return the next whole message, or ``None`` when more bytes are needed.

        Raises:
            FramingError: The buffered bytes are not a CAPF message (the decoder is then unusable).
            SessionMismatchError: The message belongs to another session.
        """
        if len(self._buffer) < HEADER_LENGTH:
            return None
        command, session_id, length = _check_header(self._buffer)
        if len(self._buffer) < HEADER_LENGTH + length:
            return None
        body = bytes(self._buffer[HEADER_LENGTH : HEADER_LENGTH + length])
        message = Message(as_enum(Command, command), session_id, _decode_body(body, command))
        if self.expected_session_id is not None and session_id != self.expected_session_id:
            raise SessionMismatchError(self.expected_session_id, session_id)
        del self._buffer[: HEADER_LENGTH + length]
        return message

    def close(self) -> None:
        """Declare the end of the stream.

        Raises:
            FramingError: Bytes of an incomplete message remain (the peer closed mid-message).
        """
        if len(self._buffer) >= HEADER_LENGTH:
            _, _, length = _check_header(self._buffer)
            raise FramingError(
                f"stream ended with an incomplete CAPF message: its body length {length} reaches beyond the "
                f"{len(self._buffer) - HEADER_LENGTH} bytes that follow the header",
                hint="the message is truncated (the peer closed mid-message, or the input was cut) or its length "
                "field is wrong; capture the whole message",
            )
        if self._buffer:
            raise FramingError(
                f"stream ended with {len(self._buffer)} bytes of an incomplete CAPF message",
                hint="the peer closed the connection mid-message, or the input was cut; capture the whole stream",
            )


def decode_messages(data: bytes, *, expected_session_id: int | None = None) -> list[Message]:
    """Decode a complete stream of back-to-back messages.

    Args:
        data: The bytes of zero or more whole messages.
        expected_session_id: When set, every message must carry this session id.

    Returns:
        The messages in order.

    Raises:
        FramingError: The bytes are not whole CAPF messages (wrong protocol id, a length beyond the buffer,
            a truncated element, trailing bytes).
        SessionMismatchError: A message carries another session id.
    """
    decoder = MessageDecoder(expected_session_id=expected_session_id)
    decoder.feed(data)
    messages: list[Message] = []
    while (message := decoder.next_message()) is not None:
        messages.append(message)
    decoder.close()
    return messages


def decode_message(data: bytes, *, expected_session_id: int | None = None) -> Message:
    """Decode exactly one message.

    Args:
        data: The bytes of one whole message, nothing more.
        expected_session_id: When set, the message must carry this session id.

    Returns:
        The message.

    Raises:
        FramingError: The bytes are not exactly one CAPF message.
        SessionMismatchError: The message carries another session id.
    """
    messages = decode_messages(data, expected_session_id=expected_session_id)
    if len(messages) != 1:
        raise FramingError(
            f"expected one CAPF message, found {len(messages)}",
            hint="pass the bytes of a single message, or use decode_messages for a stream",
        )
    return messages[0]
