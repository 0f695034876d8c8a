"""The click application behind the ``est`` command (needs the ``cli`` extra).

Data (PEM, or JSON with ``--json``) goes to stdout or to the files named with ``-o``; messages go to stderr.
Files are written atomically, private keys with mode 0600; nothing is written when the operation fails. The exit
codes are listed in :class:`estclient._cli_support.ExitCode` and in the CLI reference.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rich.console import Console
from rich.table import Table

from estclient._auth import BasicAuth, ClientCertificate, DigestAuth
from estclient._cli_serve import serve
from estclient._cli_support import (
    ExitCode,
    certificate_summary,
    fail,
    load_csr_file,
    load_key_file,
    new_key,
    report_error,
    stderr,
    write_certificates,
    write_private_key,
)
from estclient._client import EstClient
from estclient._csrattrs import OID_CRI_TEMPLATE, CsrAttribute, CsrAttrOid, CsrTemplate
from estclient._errors import EstError
from estclient._pop import CsrSpec
from estclient._results import EnrollResult, Pending
from estclient._serverkeygen import ServerKeyGenResult
from estclient._trust import TrustAnchors, certificate_fingerprint
from estclient._version import __version__

T = TypeVar("T")
_FILE = click.Path(dir_okay=False, path_type=Path)
_EXISTING = click.Path(exists=True, dir_okay=False, path_type=Path)


@dataclass
class _Options:
    server: str | None
    label: str | None
    ca_file: Path | None
    bootstrap: bool
    fingerprints: tuple[str, ...]
    user: str | None
    digest: bool
    cert: Path | None
    key: Path | None
    timeout: float
    json: bool

    def client(self, *, bootstrap_allowed: bool = False) -> EstClient:
        """The client the options describe; a bad URL, trust or credential file is a usage error (exit 2)."""
        try:
            return self._client(bootstrap_allowed=bootstrap_allowed)
        except EstError as exc:
            report_error(exc, as_json=self.json, code=ExitCode.USAGE)

    def _client(self, *, bootstrap_allowed: bool) -> EstClient:
        if not self.server:
            fail("no EST server: give --server https://HOST[:PORT] (or set EST_SERVER).")
        if self.bootstrap and not bootstrap_allowed:
            fail("--bootstrap only fetches /cacerts (RFC 7030 §4.1.1); use --ca-file with the accepted CA file.")
        trust = self._trust()
        auth: httpx.Auth | None = None
        if self.user is not None and not self.bootstrap:
            password = os.environ.get("EST_PASSWORD")
            if password is None:
                password = click.prompt(f"EST password for {self.user}", hide_input=True, err=True)
            auth = DigestAuth(self.user, password) if self.digest else BasicAuth(self.user, password)
        certificate = None
        if (self.cert is None) != (self.key is None):
            fail("--cert and --key go together (the TLS client certificate and its private key).")
        if self.cert is not None and self.key is not None:
            certificate = ClientCertificate.from_files(self.cert, self.key)
        return EstClient(
            self.server,
            trust=trust,
            label=self.label,
            auth=auth,
            client_certificate=certificate,
            timeout=self.timeout,
        )

    def _trust(self) -> TrustAnchors:
        if self.bootstrap:
            if self.fingerprints:
                return TrustAnchors.bootstrap(fingerprints=self.fingerprints)
            return TrustAnchors.bootstrap(confirm=_confirm_fingerprints)
        if self.ca_file is not None:
            return TrustAnchors.explicit_anchors(self.ca_file)
        return TrustAnchors.system()


def _confirm_fingerprints(certs: Sequence[x509.Certificate]) -> bool:
    # Plain lines, never wrapped: a person compares every character of the fingerprints.
    stderr.print("CA certificates offered by the server (bootstrap: not yet trusted):", markup=False)
    for cert in certs:
        stderr.print(f"  subject: {cert.subject.rfc4514_string()}", markup=False, soft_wrap=True)
        stderr.print(f"  SHA-256: {certificate_fingerprint(cert)}", markup=False, soft_wrap=True)
    return click.confirm("Do these fingerprints match the ones the CA operator published?", default=False, err=True)


def _run(options: _Options, action: Callable[[], T]) -> T:
    try:
        return action()
    except EstError as exc:
        report_error(exc, as_json=options.json)


def _emit(options: _Options, payload: dict[str, Any], human: str | None = None) -> None:
    if options.json:
        click.echo(json.dumps(payload, indent=2))
    elif human:
        stderr.print(human, markup=False)


def _pem(certs: Sequence[x509.Certificate]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def _pending(options: _Options, pending: Pending, key_file: Path | None) -> NoReturn:
    payload = {
        "status": "pending",
        "operation": pending.operation,
        "retry_after": pending.retry_after,
        "retry_at": pending.retry_at.isoformat(),
        "server_text": pending.server_text,
        "key_file": str(key_file) if key_file else None,
    }
    again = f"; send the same request again with --key {key_file}" if key_file else "; send the same request again"
    _emit(
        options,
        payload,
        f"pending: retry after {pending.retry_after:.0f} s (at {pending.retry_at:%H:%M:%S} UTC){again}",
    )
    raise SystemExit(int(ExitCode.PENDING))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="est")
@click.option("--server", envvar="EST_SERVER", help="EST server URL, https://HOST[:PORT] [env EST_SERVER].")
@click.option("--label", envvar="EST_LABEL", help="CA label (/.well-known/est/LABEL/...) [env EST_LABEL].")
@click.option(
    "--ca-file", type=_EXISTING, envvar="EST_CA_FILE", help="PEM file of the CA(s) that authenticate the server."
)
@click.option(
    "--bootstrap", is_flag=True, help="No trust anchor yet: show /cacerts fingerprints and ask (cacerts only)."
)
@click.option("--fingerprint", "fingerprints", multiple=True, help="With --bootstrap: accept this SHA-256 fingerprint.")
@click.option("--user", envvar="EST_USER", help="HTTP user; the password comes from EST_PASSWORD or a prompt.")
@click.option("--digest", is_flag=True, help="Answer HTTP Digest instead of sending Basic credentials.")
@click.option("--cert", type=_EXISTING, help="TLS client certificate (PEM, with its chain).")
@click.option("--key", type=_EXISTING, help="Private key of --cert (PEM).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds per network phase.")
@click.option("--json", "as_json", is_flag=True, help="Print results (and errors) as JSON on stdout.")
@click.pass_context
def cli(
    ctx: click.Context,
    server: str | None,
    label: str | None,
    ca_file: Path | None,
    bootstrap: bool,
    fingerprints: tuple[str, ...],
    user: str | None,
    digest: bool,
    cert: Path | None,
    key: Path | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Talk to an EST (RFC 7030) server, or run one.

    Exit codes: 0 ok, 1 other error, 2 usage or input file, 3 authentication refused, 4 server not trusted,
    5 connection/timeout, 6 request refused or failed by the server, 7 malformed answer, 8 pending (retry later).
    """
    if bootstrap and ca_file is not None:
        raise click.UsageError("--ca-file and --bootstrap exclude each other.")
    if fingerprints and not bootstrap:
        raise click.UsageError("--fingerprint is for --bootstrap.")
    ctx.obj = _Options(server, label, ca_file, bootstrap, fingerprints, user, digest, cert, key, timeout, as_json)


def _options(ctx: click.Context) -> _Options:
    options = ctx.find_object(_Options)
    assert options is not None
    return options


_der_option = click.option("--der", is_flag=True, help="Write DER instead of PEM.")


@cli.command()
@click.option("-o", "--out", type=_FILE, help="Write the CA certificates here (default: PEM on stdout).")
@_der_option
@click.pass_context
def cacerts(ctx: click.Context, out: Path | None, der: bool) -> None:
    """Get the CA certificates (/cacerts); with --der, a PKCS#7 certs-only file."""
    options = _options(ctx)

    def fetch() -> None:
        with options.client(bootstrap_allowed=True) as client:
            result = client.cacerts()
        certs = list(result.trusted_certificates())
        if out is not None or not options.json:
            write_certificates(out, certs, der=der, pkcs7=True)
        summary = f"{len(certs)} CA certificate(s)" + (f" written to {out}" if out else "")
        payload: dict[str, Any] = {
            "certificates": [certificate_summary(c) for c in certs],
            "file": str(out) if out else None,
            "authenticated_by": result.authenticated_by,
        }
        if out is None:
            payload["pem"] = _pem(certs)
        _emit(options, payload, summary)

    _run(options, fetch)


@cli.command()
@click.pass_context
def csrattrs(ctx: click.Context) -> None:
    """Show what the server wants in certificate requests (/csrattrs)."""
    options = _options(ctx)

    def fetch() -> None:
        with options.client() as client:
            attrs = client.csrattrs()
        req = attrs.requirements()
        items = [_describe_item(item) for item in attrs.items]
        payload = {
            "empty": attrs.is_empty,
            "items": items,
            "challenge_password": req.challenge_password,
        }
        if options.json:
            click.echo(json.dumps(payload, indent=2))
            return
        if attrs.is_empty:
            click.echo("The server asks for nothing in particular.")
            return
        table = Table("OID", "name", "kind")
        for item in items:
            table.add_row(item["oid"], item["name"], item["kind"])
        Console(highlight=False, emoji=False).print(table)  # the data: stdout
        if req.challenge_password:
            click.echo("The server wants PoP linking (challengePassword = base64(tls-unique)).")

    _run(options, fetch)


def _describe_item(item: CsrAttrOid | CsrAttribute | CsrTemplate) -> dict[str, str]:
    if isinstance(item, CsrTemplate):
        return {"oid": OID_CRI_TEMPLATE.dotted_string, "name": "certificationRequestInfoTemplate", "kind": "template"}
    kind = "attribute" if isinstance(item, CsrAttribute) else "oid"
    return {"oid": item.oid.dotted_string, "name": item.name, "kind": kind}


def _csr_input(
    csr_file: Path | None, key_file: Path | None, new_key_spec: str | None, subject: str | None, sans: tuple[str, ...]
) -> tuple[x509.CertificateSigningRequest | CsrSpec, Any]:
    """The request to send and the key to save (None when the caller already has it)."""
    if csr_file is not None:
        if key_file or new_key_spec or subject or sans:
            fail("--csr is a finished request: do not combine it with --key/--new-key/--subject/--san.")
        return load_csr_file(csr_file), None
    if (key_file is None) == (new_key_spec is None):
        fail("give --csr FILE, or one of --key FILE / --new-key rsa:2048|ec:P-256 (with --subject).")
    key = load_key_file(key_file) if key_file is not None else new_key(new_key_spec or "")
    return CsrSpec(key, subject, sans=sans), (key if new_key_spec else None)


def _request_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed(
        [
            click.option("--csr", "csr_file", type=_EXISTING, help="A finished CSR (PEM or DER), sent as is."),
            click.option("--key", "key_file", type=_EXISTING, help="Build the CSR for this private key (PEM)."),
            click.option("--new-key", "new_key_spec", help="Make a new key: rsa:2048, ec:P-256, ec:P-384..."),
            click.option("--subject", help='Subject, e.g. "CN=phone1,O=Example".'),
            click.option("--san", "sans", multiple=True, help="subjectAltName (DNS name, IP, email:..., uri:...)."),
            click.option("--key-out", type=_FILE, help="Where to write the new key (mode 0600; --new-key)."),
            click.option("-o", "--out", type=_FILE, help="Write the certificate here (default: PEM on stdout)."),
            click.option("--chain", is_flag=True, help="Append the CA chain to the certificate output."),
            click.option("--wait", is_flag=True, help="On 202, wait Retry-After and ask again (up to 3 times)."),
            _der_option,
        ]
    ):
        f = decorator(f)
    return f


def _enroll_command(ctx: click.Context, operation: str, kwargs: dict[str, Any]) -> None:
    options = _options(ctx)
    if kwargs["new_key_spec"] and not kwargs["key_out"]:
        fail("--new-key needs --key-out FILE to keep the new private key.")
    request, key_to_save = _csr_input(
        kwargs["csr_file"], kwargs["key_file"], kwargs["new_key_spec"], kwargs["subject"], kwargs["sans"]
    )
    if operation == "simplereenroll" and options.cert is None:
        fail("reenroll authenticates with the certificate being renewed: give --cert and --key.")

    def run() -> EnrollResult | Pending:
        with options.client() as client:
            if operation == "simpleenroll":
                return client.simple_enroll(request, wait=kwargs["wait"])
            if operation == "simplereenroll":
                return client.simple_reenroll(request, wait=kwargs["wait"])
            return client.full_cmc(request, wait=kwargs["wait"])

    result = _run(options, run)
    if key_to_save is not None:
        write_private_key(kwargs["key_out"], key_to_save, der=False)
    if isinstance(result, Pending):
        _pending(options, result, kwargs["key_out"] if key_to_save is not None else kwargs["key_file"])
    _issued(options, result.certificate, result.chain, kwargs)


def _issued(
    options: _Options, cert: x509.Certificate, chain: Sequence[x509.Certificate], kwargs: dict[str, Any]
) -> None:
    out: Path | None = kwargs["out"]
    certs = [cert, *chain] if kwargs["chain"] else [cert]
    if out is not None or not options.json:
        write_certificates(out, certs, der=kwargs["der"])
    payload = {
        "status": "issued",
        "certificate": certificate_summary(cert),
        "file": str(out) if out else None,
        "key_file": str(kwargs["key_out"]) if kwargs.get("key_out") else None,
    }
    if out is None:
        payload["pem"] = _pem(certs)
    _emit(options, payload, f"issued {cert.subject.rfc4514_string()}" + (f", written to {out}" if out else ""))


@cli.command()
@_request_options
@click.pass_context
def enroll(ctx: click.Context, /, **kwargs: Any) -> None:
    """Enroll for a certificate (/simpleenroll)."""
    _enroll_command(ctx, "simpleenroll", kwargs)


@cli.command()
@_request_options
@click.pass_context
def reenroll(ctx: click.Context, /, **kwargs: Any) -> None:
    """Renew (same key) or rekey (--new-key) the certificate given with --cert/--key (/simplereenroll).

    Without --csr, --subject and --san default to those of the current certificate.
    """
    options = _options(ctx)
    if not kwargs["csr_file"] and options.cert is not None:
        try:
            current = x509.load_pem_x509_certificates(options.cert.read_bytes())[0]
        except ValueError as exc:
            fail(f"{options.cert} is not a PEM certificate ({exc}).")
        if not kwargs["subject"]:
            kwargs["subject"] = current.subject.rfc4514_string()
        if not kwargs["sans"]:
            kwargs["sans"] = _sans_of(current)
        if not kwargs["key_file"] and not kwargs["new_key_spec"]:
            kwargs["key_file"] = options.key  # renew with the same key
    _enroll_command(ctx, "simplereenroll", kwargs)


def _sans_of(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    values: list[str] = [str(v) for v in san.get_values_for_type(x509.DNSName)]
    values += [str(v) for v in san.get_values_for_type(x509.IPAddress)]
    values += [f"email:{v}" for v in san.get_values_for_type(x509.RFC822Name)]
    values += [f"uri:{v}" for v in san.get_values_for_type(x509.UniformResourceIdentifier)]
    return tuple(values)


@cli.command()
@_request_options
@click.pass_context
def fullcmc(ctx: click.Context, /, **kwargs: Any) -> None:
    """Enroll with a CMC Full PKI Request (/fullcmc)."""
    _enroll_command(ctx, "fullcmc", kwargs)


@cli.command()
@click.option("--subject", required=True, help='Subject, e.g. "CN=phone1,O=Example".')
@click.option("--san", "sans", multiple=True, help="subjectAltName (DNS name, IP, email:..., uri:...).")
@click.option("--key-type", default="ec:P-256", show_default=True, help="Type of the key the server makes.")
@click.option("--key-out", type=_FILE, required=True, help="Where to write the server-generated key (mode 0600).")
@click.option("-o", "--out", type=_FILE, help="Write the certificate here (default: PEM on stdout).")
@click.option("--chain", is_flag=True, help="Append the CA chain to the certificate output.")
@click.option("--wait", is_flag=True, help="On 202, wait Retry-After and ask again (up to 3 times).")
@_der_option
@click.pass_context
def serverkeygen(ctx: click.Context, /, subject: str, sans: tuple[str, ...], key_type: str, **kwargs: Any) -> None:
    """Have the server generate the key pair (/serverkeygen); the key is written with mode 0600."""
    options = _options(ctx)
    # The server ignores the request's key (RFC 7030 §4.4.1) but makes one of the same type.
    spec = CsrSpec(new_key(key_type), subject, sans=sans)

    def run() -> ServerKeyGenResult | Pending:
        with options.client() as client:
            return client.server_keygen(spec, wait=kwargs["wait"])

    result = _run(options, run)
    if isinstance(result, Pending):
        _pending(options, result, None)
    chain = [c for c in result.certificates if c != result.certificate]
    write_private_key(kwargs["key_out"], result.private_key, der=kwargs["der"])
    _issued(options, result.certificate, chain, kwargs)


cli.add_command(serve)
