"""``capf decode``: print CAPF messages element by element, from hex on the command line or from a file.

Exit codes follow the ``capf`` command: 0 every byte decoded, 3 the input is unreadable or not whole CAPF
messages (what decoded before the fault is still printed, then the cause and the fix).
"""

from __future__ import annotations

import json
import re
import string
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from cryptography import x509

from capf_common._codec import Message, MessageDecoder
from capf_common._elements import describe_element
from capf_common._enums import HEADER_LENGTH, ElementTag
from capf_common._errors import CapfProtocolError

__all__ = ["decode"]

EXIT_BAD_INPUT = 3
_HEX_NOISE = re.compile(r"0x|[\s:,-]", re.IGNORECASE)
_HEX_PREVIEW = 32


def _as_hex(text: str) -> bytes | None:
    cleaned = _HEX_NOISE.sub("", text)
    if not cleaned or len(cleaned) % 2 or any(c not in string.hexdigits for c in cleaned):
        return None
    return bytes.fromhex(cleaned)


def _is_file(source: str) -> bool:
    try:
        return Path(source).is_file()
    except OSError:  # a long hex string is no file name
        return False


def _read_input(source: str) -> bytes:
    """Bytes from ``-`` (stdin), a file (binary, or hex text), or a hex string."""
    if source == "-":
        raw = sys.stdin.buffer.read()
    elif _is_file(source):
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise _UndecodableInput(f"cannot read {source}: {exc.strerror or exc}") from exc
    else:
        data = _as_hex(source)
        if data is None:
            _bad_input(f"{source!r} is neither a file nor hex digits", "pass a file name or the message as hex")
        return data
    try:
        data = _as_hex(raw.decode("ascii"))
    except UnicodeDecodeError:
        data = None
    return raw if data is None else data


class _UndecodableInput(click.ClickException):
    """Input that cannot be read or is not whole CAPF messages: exit code 3."""

    exit_code = EXIT_BAD_INPUT


def _bad_input(cause: str, hint: str) -> NoReturn:
    raise _UndecodableInput(f"{cause}. Fix: {hint}")


def _certificate_summary(der_hex: str) -> str:
    try:
        cert = x509.load_der_x509_certificate(bytes.fromhex(der_hex))
    except ValueError:
        return "not a parsable certificate"
    return f"subject {cert.subject.rfc4514_string()}, issuer {cert.issuer.rfc4514_string()}"


def _value_text(description: dict[str, Any]) -> str:
    value = description["value"]
    if description.get("raw"):
        shown = value[: _HEX_PREVIEW * 2] + ("..." if len(value) > _HEX_PREVIEW * 2 else "")
        note = f" ({description['error']})" if "error" in description else ""
        return f"hex {shown}{note}"
    if description["tag"] == ElementTag.CERTIFICATE:
        summary = _certificate_summary(value["der"])
        return f"{value['certificate_type']} certificate, {value['der_length']} bytes DER, {summary}"
    if description["tag"] == ElementTag.SUDI_DATA:
        hashes = ", ".join(s["hash"] for s in value["signatures"]) or "none"
        return f"SUDI certificate ({_certificate_summary(value['certificate'])}), signatures: {hashes}"
    if description["tag"] == ElementTag.SIGNED_DATA:
        return f"signature, {len(value['signature']) // 2} bytes"
    if description["tag"] in (ElementTag.PUBLIC_KEY, ElementTag.CSR):
        return str(value["summary"])
    if description["tag"] == ElementTag.SHA2_SIGNED_DATA:
        return f"{value['hash']} signature, {len(value['signature']) // 2} bytes"
    if isinstance(value, dict):
        return f"{value['name']} ({value['number']})"
    return repr(value) if isinstance(value, str) else str(value)


def _message_json(message: Message, offset: int) -> dict[str, Any]:
    return {
        "offset": offset,
        "command": int(message.command),
        "name": message.name,
        "session_id": message.session_id,
        "body_length": sum(3 + len(e.value) for e in message.elements),
        "elements": [describe_element(e) for e in message.elements],
    }


@click.command("decode")
@click.argument("source", metavar="HEX|FILE|-")
@click.option("--json", "as_json", is_flag=True, help="Print the messages as JSON.")
def decode(source: str, as_json: bool) -> None:
    """Decode CAPF messages (one or a stream) and print them element by element.

    SOURCE is the hex of the bytes (spaces, colons and 0x allowed), a file holding the raw bytes or their hex,
    or - for standard input. Passwords are never printed.
    """
    data = _read_input(source)
    decoder = MessageDecoder()
    decoder.feed(data)
    messages: list[dict[str, Any]] = []
    offset = 0
    error: CapfProtocolError | None = None
    try:
        while (message := decoder.next_message()) is not None:
            messages.append(_message_json(message, offset))
            offset += HEADER_LENGTH + messages[-1]["body_length"]
        decoder.close()
    except CapfProtocolError as exc:
        error = exc
    if as_json:
        failure = None if error is None else {"offset": offset, "cause": error.cause, "hint": error.hint}
        click.echo(json.dumps({"messages": messages, "error": failure}, indent=2))
    else:
        for number, item in enumerate(messages, 1):
            click.echo(
                f"message {number} at byte {item['offset']}: {item['name']} ({item['command']}), "
                f"session {item['session_id']:#010x}, body {item['body_length']} bytes"
            )
            for element in item["elements"]:
                click.echo(f"  {element['name']} ({element['tag']}), {element['length']} bytes: {_value_text(element)}")
    if error is not None:
        _bad_input(f"at byte {offset}: {error.cause}", error.hint)
