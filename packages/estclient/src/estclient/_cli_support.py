"""Helpers of the ``est`` command: exit codes, error reporting, reading inputs and writing outputs."""

from __future__ import annotations

import enum
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from rich.console import Console
from rich.markup import escape

from estclient._errors import (
    AuthenticationError,
    BootstrapError,
    CmcFailError,
    EstConnectionError,
    EstError,
    EstHttpError,
    MalformedResponseError,
    PopLinkingError,
    ServerTrustError,
)
from estclient._trust import certificate_fingerprint
from estclient.testing._files import write_atomic

__all__ = [
    "ExitCode",
    "certificate_summary",
    "exit_code_for",
    "fail",
    "load_csr_file",
    "load_key_file",
    "new_key",
    "report_error",
    "write_certificates",
    "write_private_key",
]

stderr = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)  # ":CD:" in a fingerprint is no emoji


class ExitCode(enum.IntEnum):
    """The exit codes of ``est`` (documented in the CLI reference)."""

    OK = 0
    ERROR = 1  # any other estclient error
    USAGE = 2  # bad options or input files (click's own code for usage errors)
    AUTH = 3  # the server refused the credentials (401/403)
    TRUST = 4  # the server could not be authenticated, or bootstrap fingerprints were not confirmed
    CONNECTION = 5  # unreachable, name resolution, timeout, connection dropped
    SERVER = 6  # the server refused or failed the request (4xx other than auth, 5xx, CMC failure, PoP)
    MALFORMED = 7  # the server's answer does not parse
    PENDING = 8  # the request is pending (202): retry later with the same request


def exit_code_for(error: EstError) -> ExitCode:
    """Map an estclient error to the command's exit code."""
    if isinstance(error, AuthenticationError):
        return ExitCode.AUTH
    if isinstance(error, ServerTrustError | BootstrapError):
        return ExitCode.TRUST
    if isinstance(error, EstConnectionError):
        return ExitCode.CONNECTION
    if isinstance(error, EstHttpError | CmcFailError | PopLinkingError):
        return ExitCode.SERVER
    if isinstance(error, MalformedResponseError):
        return ExitCode.MALFORMED
    return ExitCode.ERROR


def report_error(error: EstError, *, as_json: bool, code: ExitCode | None = None) -> NoReturn:
    """Print the error (cause, fix, libest equivalent) and exit with its code (or ``code``)."""
    code = exit_code_for(error) if code is None else code
    if as_json:
        payload: dict[str, Any] = {
            "error": type(error).__name__,
            "message": error.message,
            "hint": error.hint,
            "libest_error": error.libest_error,
            "libest_code": error.libest_code,
            "exit_code": int(code),
        }
        if isinstance(error, EstHttpError):
            payload["http_status"] = error.status
        click.echo(json.dumps(payload, indent=2))
    else:
        stderr.print(f"[bold red]error:[/] {escape(error.message)}", markup=True)
        if error.hint:
            stderr.print(f"[bold]fix:[/] {escape(error.hint)}", markup=True)
        if error.libest_error:
            stderr.print(f"libest: {error.libest_error} ({error.libest_code})", markup=False)
    sys.exit(int(code))


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print a problem with the command's input and exit."""
    stderr.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    sys.exit(int(code))


def certificate_summary(cert: x509.Certificate) -> dict[str, str]:
    """What ``--json`` output says about a certificate."""
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sha256_fingerprint": certificate_fingerprint(cert),
    }


def write_certificates(path: Path | None, certs: Sequence[x509.Certificate], *, der: bool, pkcs7: bool = False) -> None:
    """Write certificates atomically (PEM, DER of the first, or a DER certs-only PKCS#7), or PEM to stdout."""
    if der:
        if pkcs7 or len(certs) > 1:
            from estclient._pkcs7 import build_certs_only

            data = build_certs_only(certs)
        else:
            data = certs[0].public_bytes(serialization.Encoding.DER)
    else:
        data = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    if path is None:
        if der:
            fail("DER output is binary: give an output file with -o/--out.")
        click.echo(data.decode(), nl=False)
    else:
        _write(path, data, private=False)


def _write(path: Path, data: bytes, *, private: bool) -> None:
    try:
        write_atomic(path, data, private=private)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}", ExitCode.ERROR)


def write_private_key(path: Path, key: PrivateKeyTypes, *, der: bool) -> None:
    """Write a private key (unencrypted PKCS#8) atomically with mode 0600."""
    encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
    data = key.private_bytes(encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write(path, data, private=True)


def load_csr_file(path: Path) -> x509.CertificateSigningRequest:
    """Load a CSR in PEM or DER."""
    data = path.read_bytes()
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError as exc:
        fail(f"{path} is not a PEM or DER certificate request ({exc}).")


def load_key_file(path: Path) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """Load an RSA or EC private key (PEM or DER, unencrypted or with EST_KEY_PASSWORD)."""
    data = path.read_bytes()
    password = os.environ.get("EST_KEY_PASSWORD")
    secret = password.encode() if password else None
    try:
        key = (
            serialization.load_pem_private_key(data, secret)
            if b"-----BEGIN" in data
            else serialization.load_der_private_key(data, secret)
        )
    except (ValueError, TypeError) as exc:
        fail(f"{path} is not a usable private key ({exc}); encrypted keys take their password from EST_KEY_PASSWORD.")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        fail(f"{path} holds a {type(key).__name__}; use an RSA or EC key.")
    return key


_CURVES: dict[str, ec.EllipticCurve] = {
    "p-256": ec.SECP256R1(),
    "p-384": ec.SECP384R1(),
    "p-521": ec.SECP521R1(),
    "secp256r1": ec.SECP256R1(),
    "secp384r1": ec.SECP384R1(),
    "secp521r1": ec.SECP521R1(),
}


def new_key(spec: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """Make a key from ``rsa:BITS`` or ``ec:CURVE`` (P-256, P-384, P-521)."""
    kind, _, param = spec.lower().partition(":")
    if kind == "rsa":
        bits = int(param) if param.isascii() and param.isdigit() else 0
        if bits < 2048 or bits > 8192:
            fail(f"--new-key {spec}: RSA keys take a size from 2048 to 8192 bits, e.g. rsa:2048.")
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if kind == "ec":
        curve = _CURVES.get(param or "p-256")
        if curve is None:
            fail(f"--new-key {spec}: unknown curve; use ec:P-256, ec:P-384 or ec:P-521.")
        return ec.generate_private_key(curve)
    fail(f"--new-key {spec}: use rsa:BITS (e.g. rsa:2048) or ec:CURVE (e.g. ec:P-256).")
