r"""The click application behind the ``certsrv`` command (needs the ``cli`` extra).

``certsrv --url https://HOST/certsrv [--auth ntlm|kerberos|negotiate|basic|cert] [--user NAME] [--ca-file PEM]
[--timeout S] [--timeout-connect|-authentication|-enrollment|-retrieval S] [--json] COMMAND``; the password comes
from ``CERTSRV_PASSWORD`` or a prompt.

Exit codes: 0 done; 1 an error not listed here; 2 usage error; 3 connection or TLS problem; 4 authentication
refused; 5 timeout; 6 the CA denied or failed the request (template, permission, bad CSR, unknown id); 7 the
request is pending (no certificate written); 11-20 ``check`` found a problem (see :mod:`certsrv._cli_check`).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from certsrv._version import __version__

if TYPE_CHECKING:
    from certsrv._client import CertsrvClient
    from certsrv._results import SubmitResult
    from certsrv._timeouts import Timeouts

PASSWORD_ENV = "CERTSRV_PASSWORD"  # noqa: S105 - the variable's name, not a password

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3
EXIT_AUTHENTICATION = 4
EXIT_TIMEOUT = 5
EXIT_ENROLLMENT = 6
EXIT_PENDING = 7

_AUTH_KINDS = ("ntlm", "kerberos", "negotiate", "basic", "cert")


@dataclass
class _Settings:
    url: str | None
    auth: str
    user: str | None
    ca_file: str | None
    client_cert: str | None
    timeout: float | None
    phase_timeouts: dict[str, float]
    as_json: bool
    console: Console
    errors: Console


def _timeouts(settings: _Settings) -> Timeouts:
    """The library's limits: ``--timeout`` for every phase (else the defaults), then each ``--timeout-PHASE``."""
    from certsrv._timeouts import Timeouts

    limits = Timeouts() if settings.timeout is None else Timeouts.uniform(settings.timeout)
    for phase, seconds in settings.phase_timeouts.items():
        limits = limits.with_phase(phase, seconds)  # type: ignore[arg-type]
    return limits


def _settings(ctx: click.Context) -> _Settings:
    settings = ctx.find_object(_Settings)
    assert settings is not None
    return settings


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _emit(settings: _Settings, data: dict[str, Any], human: Callable[[], None]) -> None:
    if settings.as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        human()


def _fail(settings: _Settings, code: int, message: str, kind: str) -> NoReturn:
    if settings.as_json:
        click.echo(json.dumps({"ok": False, "error": kind, "message": message, "exit_code": code}, indent=2))
    else:
        settings.errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    sys.exit(code)


def _exit_code(exc: BaseException) -> tuple[int, str]:
    """The exit code and error kind for a certsrv exception."""
    from certsrv import _errors as e

    if isinstance(exc, e.CertsrvTimeoutError):
        return EXIT_TIMEOUT, "timeout"
    if isinstance(exc, e.CertsrvConnectionError):
        return EXIT_CONNECTION, "connection"
    if isinstance(exc, e.AuthenticationError):
        return EXIT_AUTHENTICATION, "authentication"
    if isinstance(exc, e.RequestPendingError):
        return EXIT_PENDING, "pending"
    if isinstance(exc, e.EnrollmentError):
        return EXIT_ENROLLMENT, "enrollment"
    if isinstance(exc, e.ConfigurationError):
        return EXIT_USAGE, "configuration"
    return EXIT_ERROR, type(exc).__name__


def _password(settings: _Settings) -> str | None:
    if settings.auth == "cert" or settings.user is None:
        return None
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        password = str(click.prompt(f"Password for {settings.user}", hide_input=True, err=True))
    return password


@contextmanager
def _client(settings: _Settings) -> Iterator[CertsrvClient]:
    from certsrv import _errors as e
    from certsrv._client import CertsrvClient

    if not settings.url:
        _fail(settings, EXIT_USAGE, "no URL: give --url https://HOST/certsrv (or set CERTSRV_URL)", "usage")
    try:
        client = CertsrvClient(
            settings.url,
            auth=settings.auth,  # type: ignore[arg-type]
            username=settings.user,
            password=_password(settings),
            ca_file=settings.ca_file,
            client_cert=settings.client_cert,
            timeouts=_timeouts(settings),
        )
    except e.CertsrvError as exc:
        code, kind = _exit_code(exc)
        _fail(settings, code, str(exc), kind)
    try:
        with client:
            yield client
    except e.CertsrvError as exc:
        code, kind = _exit_code(exc)
        _fail(settings, code, str(exc), kind)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="certsrv")
@click.option("--url", envvar="CERTSRV_URL", help="The web enrollment site, https://HOST/certsrv.")
@click.option(
    "--auth",
    type=click.Choice(_AUTH_KINDS),
    default="negotiate",
    show_default=True,
    help="How to authenticate (cert: TLS client certificate only, see --client-cert).",
)
@click.option("--user", envvar="CERTSRV_USER", help="DOMAIN\\user or user@REALM.")
@click.option(
    "--ca-file", type=click.Path(exists=True, dir_okay=False), help="PEM trust store for the IIS certificate."
)
@click.option(
    "--client-cert", type=click.Path(exists=True, dir_okay=False), help="PEM with client certificate and key."
)
@click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds allowed for each phase.")
@click.option(
    "--timeout-connect", type=click.FloatRange(min=0.1), help="Seconds for TCP connect + TLS handshake (default 10)."
)
@click.option(
    "--timeout-authentication",
    type=click.FloatRange(min=0.1),
    help="Seconds for each round trip of the NTLM/Kerberos/Negotiate exchange (default 30).",
)
@click.option(
    "--timeout-enrollment",
    type=click.FloatRange(min=0.1),
    help="Seconds for the CA's answer to a submitted request (default 120).",
)
@click.option(
    "--timeout-retrieval",
    type=click.FloatRange(min=0.1),
    help="Seconds for certificates, chains, CRLs and pages (default 60).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def cli(
    ctx: click.Context,
    url: str | None,
    auth: str,
    user: str | None,
    ca_file: str | None,
    client_cert: str | None,
    timeout: float | None,
    timeout_connect: float | None,
    timeout_authentication: float | None,
    timeout_enrollment: float | None,
    timeout_retrieval: float | None,
    as_json: bool,
) -> None:
    """Enroll for certificates with Microsoft AD CS web enrollment (/certsrv), and check or emulate a CA.

    The password comes from the environment variable CERTSRV_PASSWORD, or a prompt. --timeout sets every phase;
    --timeout-PHASE overrides one phase.
    """
    ctx.obj = _Settings(
        url,
        auth,
        user,
        ca_file,
        client_cert,
        timeout,
        {
            phase: seconds
            for phase, seconds in (
                ("connect", timeout_connect),
                ("authentication", timeout_authentication),
                ("enrollment", timeout_enrollment),
                ("retrieval", timeout_retrieval),
            )
            if seconds is not None
        },
        as_json,
        Console(highlight=False, soft_wrap=True, emoji=False),
        Console(stderr=True, soft_wrap=True, emoji=False),
    )


def _attributes(values: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{value!r} is not NAME:VALUE", param_hint="--attr")
        pairs.append((name.strip(), rest.strip()))
    return pairs


@cli.command()
@click.option(
    "--csr", "csr_file", type=click.Path(exists=True, dir_okay=False), required=True, help="PKCS#10 (PEM/DER)."
)
@click.option("--template", required=True, help="The certificate template's name (cn).")
@click.option("--attr", "attrs", multiple=True, help="A request attribute NAME:VALUE (repeatable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Where to write the certificate.")
@click.option("--der", is_flag=True, help="Write DER instead of PEM.")
@click.pass_context
def submit(ctx: click.Context, csr_file: str, template: str, attrs: tuple[str, ...], output: str, der: bool) -> None:
    """Submit a CSR and write the issued certificate (exit 7 when the request is pending)."""
    settings = _settings(ctx)
    attributes = _attributes(attrs)
    with _client(settings) as client:
        result = client.submit(Path(csr_file).read_bytes(), template, attributes or None)
    _write_result(settings, result, output, der)


def _write_result(settings: _Settings, result: SubmitResult, output: str, der: bool) -> None:
    from certsrv._results import Issued

    if isinstance(result, Issued):
        write_atomic(Path(output), result.der if der else result.pem)
        data = {"ok": True, "status": "issued", "request_id": result.request_id, "output": output}
        _emit(
            settings,
            data,
            lambda: settings.console.print(f"issued: request id {result.request_id}, wrote {escape(output)}"),
        )
        return
    data = {"ok": True, "status": "pending", "request_id": result.request_id, "output": None}
    _emit(
        settings,
        data,
        lambda: settings.console.print(
            f"pending: request id {result.request_id}; once approved: certsrv retrieve --id {result.request_id}"
        ),
    )
    sys.exit(EXIT_PENDING)


@cli.command()
@click.option("--id", "request_id", type=click.IntRange(min=1), required=True, help="The request id.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Where to write the certificate.")
@click.option("--der", is_flag=True, help="Write DER instead of PEM.")
@click.pass_context
def retrieve(ctx: click.Context, request_id: int, output: str, der: bool) -> None:
    """Retrieve the certificate of an earlier request (exit 7 while it is pending)."""
    settings = _settings(ctx)
    with _client(settings) as client:
        result = client.retrieve(request_id)
    _write_result(settings, result, output, der)


def _output_option(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--der", is_flag=True, help="DER instead of PEM.")(func)
    return click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to a file (default: stdout).")(
        func
    )


def _deliver(settings: _Settings, data: bytes, output: str | None, what: str, extra: dict[str, Any]) -> None:
    if output:
        write_atomic(Path(output), data)
        _emit(
            settings,
            {"ok": True, "output": output, **extra},
            lambda: settings.console.print(f"wrote {what} to {escape(output)}"),
        )
    elif settings.as_json:
        click.echo(json.dumps({"ok": True, "pem": data.decode("ascii", "replace"), **extra}, indent=2))
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


@cli.command("ca-cert")
@click.option("--renewal", type=click.IntRange(min=0), help="Which CA certificate (default: the newest).")
@_output_option
@click.pass_context
def ca_cert(ctx: click.Context, renewal: int | None, output: str | None, der: bool) -> None:
    """Download the CA certificate."""
    from certsrv._results import encode_certificate

    settings = _settings(ctx)
    with _client(settings) as client:
        cert = client.get_ca_certificate(renewal)
    _deliver(settings, encode_certificate(cert, "der" if der and output else "pem"), output, "the CA certificate", {})


@cli.command("ca-chain")
@click.option("--renewal", type=click.IntRange(min=0), help="Which CA certificate (default: the newest).")
@_output_option
@click.pass_context
def ca_chain(ctx: click.Context, renewal: int | None, output: str | None, der: bool) -> None:
    """Download the CA certificate chain (PEM, or a DER .p7b with --der)."""
    from certsrv._results import encode_certificates

    settings = _settings(ctx)
    with _client(settings) as client:
        chain = client.get_ca_chain(renewal)
    data = encode_certificates(chain, "der" if der and output else "pem")
    _deliver(settings, data, output, f"{len(chain)} CA certificates", {"count": len(chain)})


@cli.command()
@click.option("--delta", is_flag=True, help="The delta CRL instead of the base CRL.")
@click.option("--renewal", type=click.IntRange(min=0), help="Which CA key's CRL (default: the newest).")
@_output_option
@click.pass_context
def crl(ctx: click.Context, delta: bool, renewal: int | None, output: str | None, der: bool) -> None:
    """Download the CA's base (or delta) CRL."""
    from certsrv._results import encode_crl

    settings = _settings(ctx)
    with _client(settings) as client:
        revocation_list = client.get_crl(delta=delta, renewal=renewal)
    data = encode_crl(revocation_list, "der" if der and output else "pem")
    kind = "delta" if delta else "base"
    _deliver(settings, data, output, f"the {kind} CRL", {"type": kind, "revoked": len(list(revocation_list))})


@cli.command()
@click.pass_context
def templates(ctx: click.Context) -> None:
    """List the certificate templates the CA offers this user."""
    settings = _settings(ctx)
    with _client(settings) as client:
        offered = client.list_templates()

    def human() -> None:
        table = Table("template", "display name")
        for item in offered:
            table.add_row(escape(item.name), escape(item.display_name))
        settings.console.print(table)

    _emit(
        settings, {"ok": True, "templates": [{"name": t.name, "display_name": t.display_name} for t in offered]}, human
    )


@cli.command()
@click.option("--template", help="The template the RA will use; checked against the CA's offer.")
@click.option("--test-enroll", is_flag=True, help="Also submit a throwaway request for --template (the CA issues it!).")
@click.pass_context
def check(ctx: click.Context, template: str | None, test_enroll: bool) -> None:
    """Walk the common problems in order (DNS, TCP, TLS chain, self-signed, host name, validity, auth, template).

    Prints each step's verdict and the fix; exits with the failed step's code (11-20), 0 when all pass.
    """
    from certsrv import _errors as e
    from certsrv._cli_check import run_check

    settings = _settings(ctx)
    if not settings.url:
        _fail(settings, EXIT_USAGE, "no URL: give --url https://HOST/certsrv (or set CERTSRV_URL)", "usage")
    clients: list[Any] = []

    def client() -> Any:
        if not clients:
            from certsrv._client import CertsrvClient

            clients.append(
                CertsrvClient(
                    settings.url or "",
                    auth=settings.auth,  # type: ignore[arg-type]
                    username=settings.user,
                    password=_password(settings),
                    ca_file=settings.ca_file,
                    client_cert=settings.client_cert,
                    timeouts=_timeouts(settings),
                )
            )
        return clients[0]

    def classify(exc: BaseException, step: str) -> tuple[str, str, str] | None:
        # certsrv's messages end in ". Fix: ...": the step shows the problem as its detail and one fix beside it
        problem, _, own_fix = str(exc).partition(". Fix: ")
        if step == "enrollment" and isinstance(exc, e.CertsrvTimeoutError):
            return (
                "enroll-timeout",
                f"after successful authentication, {problem}",
                "the CA answers too slowly (policy module, directory look-ups, load); raise --timeout-retrieval "
                "(the CA chain) or --timeout-enrollment (the test request), or --timeout for every phase, and "
                "check the CA service and its event log",
            )
        if step == "enrollment" and isinstance(exc, e.EnrollmentError):
            return ("template", f"the test request was not issued: {problem}", own_fix or "see the message")
        if isinstance(exc, e.AuthenticationTimeoutError):
            return (
                "auth-timeout",
                problem,
                "the CA (IIS or its domain controller) answers too slowly; raise --timeout-authentication (or "
                "--timeout), check the DC's load and the network between this host and the CA",
            )
        if isinstance(exc, e.CertsrvTimeoutError):
            return ("timeout", problem, f"raise --timeout-{exc.phase} (or --timeout) or check the CA's load")
        if isinstance(exc, e.AuthenticationError):
            return (
                "authentication",
                f"authentication failed: {problem}",
                own_fix
                or "check the user name (DOMAIN\\user or user@REALM), the password (CERTSRV_PASSWORD), the schemes "
                "IIS offers (--auth) and IIS Extended Protection",
            )
        if isinstance(exc, e.CertsrvError):
            return ("authentication", problem, own_fix or "see the message")
        return None

    try:
        report = run_check(
            settings.url,
            ca_file=settings.ca_file,
            timeout=_timeouts(settings).connect or 10.0,
            template=template,
            authenticate=lambda: client().authenticate(),
            list_templates=lambda: [t.name for t in client().list_templates()],
            enroll=lambda: _probe_enrollment(client(), template if test_enroll else None),
            classify=classify,
            client_cert=settings.client_cert,
        )
    finally:
        for item in clients:
            item.close()

    def human() -> None:
        # pad the visible label, outside the markup: padding "[green]ok[/]" would count the markup's characters
        marks = {"ok": ("ok", "green"), "failed": ("FAILED", "bold red"), "skipped": ("skipped", "dim")}
        width = max(len(label) for label, _ in marks.values())
        for step in report.steps:
            label, style = marks[step.status]
            settings.console.print(
                f"[{style}]{label:<{width}}[/] [bold]{step.id}[/] ({escape(step.title)}): {escape(step.detail)}"
            )
            if step.fix:
                settings.console.print(f"{'':<{width}} fix: {escape(step.fix)}")
        failed = report.failed
        if failed is None:
            settings.console.print("[green]all checks passed[/]")
        else:
            settings.console.print(f"[bold red]problem: {failed.problem}[/]")

    _emit(settings, report.as_dict(), human)
    sys.exit(report.exit_code)


def _probe_enrollment(client: Any, template: str | None) -> str:
    """Download the CA chain as the RA does at start; with a template, also submit a throwaway request."""
    chain = client.get_ca_chain()
    found = f"the CA chain has {len(chain)} certificate(s)"
    if template is None:
        return found
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certsrv-check test request")]))
        .sign(key, hashes.SHA256())
    )
    result = client.submit(csr, template)
    return f"{found}; the test request got id {result.request_id} ({type(result).__name__.lower()})"


def _users(values: tuple[str, ...]) -> dict[str, str]:
    users = {}
    for value in values:
        name, sep, password = value.partition(":")
        if not sep or not name or not password or ("\\" not in name and "@" not in name):
            raise click.BadParameter(f"{value!r} is not DOMAIN\\NAME:PASSWORD", param_hint="--user")
        users[name] = password
    return users


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8443, show_default=True, help="Port (0: any free).")
@click.option("--server-name", default="localhost", show_default=True, help="Host name in the URL and certificate.")
@click.option("--user", "users", multiple=True, help="An account DOMAIN\\NAME:PASSWORD (repeatable).")
@click.option("--template", "template_specs", multiple=True, help="A template NAME or NAME:issue|pending|deny.")
@click.option("--policy", type=click.Choice(["issue", "pending", "deny"]), default="issue", show_default=True)
@click.option("--language", type=click.Choice(["en", "de"]), default="en", show_default=True)
@click.option(
    "--extended-protection", type=click.Choice(["off", "accept", "required"]), default="accept", show_default=True
)
@click.option("--scheme", "schemes", multiple=True, type=click.Choice(["negotiate", "ntlm", "basic"]))
@click.option("--keytab", type=click.Path(exists=True, dir_okay=False), help="Keytab with HTTP/<server-name>.")
@click.option("--ca-name", default="EMULATED-CA", show_default=True)
@click.option("--renewals", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--log-file", type=click.Path(dir_okay=False), help="Append the IIS W3C access log here.")
@click.option("--workdir", type=click.Path(file_okay=False), help="Folder for the CA file (default: temporary).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM chain to present instead.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="The key of --tls-cert.")
@click.option("--auth-delay", type=click.FloatRange(min=0), default=0.0, help="Seconds before each 401.")
@click.option("--enroll-delay", type=click.FloatRange(min=0), default=0.0, help="Seconds before certfnsh.asp answers.")
@click.option("--fail-500", "http_500", multiple=True, help="Answer this page with HTTP 500 (repeatable; * = all).")
@click.option("--reset", "reset", multiple=True, help="Reset the connection on this page (repeatable; * = all).")
@click.option("--serve-for", type=click.FloatRange(min=0), help="Stop after this many seconds (default: Ctrl-C).")
@click.pass_context
def emulate(ctx: click.Context, /, **options: Any) -> None:
    """Run the AD CS emulator (IIS /certsrv with NTLM/Kerberos) until interrupted; print its URL and CA file."""
    from certsrv.testing import AdcsEmulator, CertificateTemplate, Faults, Policy

    settings = _settings(ctx)
    specs = options["template_specs"] or ("WebServer", "User")
    template_list = []
    for spec in specs:
        name, _, policy = spec.partition(":")
        if policy and policy not in ("issue", "pending", "deny"):
            raise click.BadParameter(f"{spec!r}: the policy must be issue, pending or deny", param_hint="--template")
        template_list.append(CertificateTemplate(name, policy=Policy(policy or options["policy"])))
    emulator = AdcsEmulator(
        users=_users(options["users"]),
        templates=template_list,
        auth=options["schemes"] or ("negotiate", "ntlm"),
        keytab=options["keytab"],
        extended_protection=options["extended_protection"],
        language=options["language"],
        ca_name=options["ca_name"],
        renewals=options["renewals"],
        host=options["host"],
        port=options["port"],
        server_name=options["server_name"],
        tls_cert_file=options["tls_cert"],
        tls_key_file=options["tls_key"],
        log_file=options["log_file"],
        workdir=options["workdir"],
        faults=Faults(
            auth_delay=options["auth_delay"],
            enroll_delay=options["enroll_delay"],
            http_500={p.lower() for p in options["http_500"]},
            reset={p.lower() for p in options["reset"]},
        ),
    )
    try:
        emulator.start()
    except OSError as exc:
        _fail(settings, EXIT_ERROR, f"cannot listen on {options['host']}:{options['port']}: {exc}", "emulate")
    try:
        data = {
            "ok": True,
            "url": emulator.url,
            "ca_file": str(emulator.ca_file),
            "port": emulator.port,
            "log_file": options["log_file"],
            "templates": [t.name for t in template_list],
        }

        def human() -> None:
            settings.console.print(f"AD CS emulator at {escape(emulator.url)}")
            settings.console.print(f"CA file: {escape(str(emulator.ca_file))}")
            settings.console.print("Press Ctrl-C to stop.")

        if settings.as_json:  # one line, so a supervising process can read it with readline()
            click.echo(json.dumps(data, sort_keys=True))
        else:
            human()
        sys.stdout.flush()
        deadline = None if options["serve_for"] is None else time.monotonic() + options["serve_for"]
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.05 if deadline is not None else 1.0)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
