"""``est serve``: the package's EST server, standalone, so any EST client can be tried against it."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from estclient._cli_support import ExitCode, fail, stderr
from estclient.testing import EstServer, LocalCa, LocalCaBackend, TlsIdentity

__all__ = ["serve"]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8443, show_default=True, help="Port (0: any free port).")
@click.option(
    "--ca-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Issuing CA certificate (PEM)."
)
@click.option("--ca-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Its private key (PEM).")
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS server certificate and chain (PEM); default: one for localhost issued by the CA.",
)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Its private key.")
@click.option("--user", "users", multiple=True, help="User allowed to enroll (password from EST_PASSWORD or a prompt).")
@click.option("--digest", is_flag=True, help="Challenge with HTTP Digest instead of Basic.")
@click.option(
    "--pop",
    type=click.Choice(["off", "verify", "require"]),
    default="verify",
    show_default=True,
    help="Proof-of-possession linking (RFC 7030 §3.5).",
)
@click.option("--label", "labels", multiple=True, help="CA label to offer (repeatable; default: any).")
@click.option("--require-client-cert", is_flag=True, help="Refuse enrollments without a TLS client certificate.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for ca.pem and the TLS files (default: a temporary folder removed on exit).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every request (libest-style lines) to stderr.")
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    ca_cert: Path | None,
    ca_key: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    users: tuple[str, ...],
    digest: bool,
    pop: str,
    labels: tuple[str, ...],
    require_client_cert: bool,
    directory: Path | None,
    verbose: bool,
) -> None:
    """Run an EST server until interrupted, printing its URL and the CA file clients must trust."""
    as_json = bool(getattr(ctx.obj, "json", False))
    if (ca_cert is None) != (ca_key is None):
        fail("--ca-cert and --ca-key go together.")
    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together.")
    try:
        ca = LocalCa.from_files(ca_cert, ca_key) if ca_cert and ca_key else LocalCa.generate()
        tls = TlsIdentity.from_files(tls_cert, tls_key) if tls_cert and tls_key else None
    except (ValueError, TypeError, OSError) as exc:
        fail(f"cannot load the CA or TLS files: {exc}")
    table: dict[str, str] = {}
    for user in users:
        password = os.environ.get("EST_PASSWORD") or click.prompt(
            f"Password for {user}", hide_input=True, confirmation_prompt=True, err=True
        )
        table[user] = password
    if verbose:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logging.getLogger("estclient.testing").addHandler(handler)
        logging.getLogger("estclient.testing").setLevel(logging.INFO)
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    server = EstServer(
        LocalCaBackend(ca),
        host=host,
        port=port,
        tls=tls,
        users=table,
        http_auth="digest" if digest else "basic",
        pop=pop,  # type: ignore[arg-type]
        labels=labels or None,
        require_client_certificate=require_client_cert,
        directory=directory,
    )
    try:
        server.start()
    except OSError as exc:
        server.stop()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", ExitCode.ERROR)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        if as_json:
            info = {"url": server.url, "port": server.port, "ca_file": str(server.ca_file), "users": sorted(table)}
            click.echo(json.dumps(info), nl=True)
        else:
            click.echo(f"EST server: {server.url}/.well-known/est")
            click.echo(f"CA file:    {server.ca_file}")
            stderr.print(
                f"auth: {'Digest' if digest else 'Basic'} for {', '.join(sorted(table)) or 'nobody (open)'}; "
                f"PoP: {pop}; labels: {', '.join(labels) or 'any'}. Stop with Ctrl-C."
            )
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
