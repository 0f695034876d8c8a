"""The click application behind the ``capf`` command (needs the ``cli`` extra).

Exit codes (all sub-commands):

* 0: done, nothing wrong found;
* 1: a problem was found (log findings, LSC profile errors, a CTL signature that does not verify);
* 2: usage error (unknown option, missing argument);
* 3: the input cannot be read or parsed (missing file, not a certificate, malformed CTL, no known log format).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from capf_common._cli_decode import decode
from capf_common._ctl import CtlFile, CtlRole, format_ctl, parse_ctl
from capf_common._diagnostics.analyze import Finding, Report, analyze
from capf_common._errors import CapfError
from capf_common._formats import load_certificate, load_certificates, order_chain
from capf_common._lsc import LscCheck, check_lsc
from capf_common._version import __version__

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
_EVIDENCE_SHOWN = 12
_DEVICES_SHOWN = 30


class _BadInput(click.ClickException):
    """Input that cannot be read or parsed: exit code 3."""

    exit_code = EXIT_BAD_INPUT


def _fail(error: Exception) -> NoReturn:
    raise _BadInput(str(error)) from error


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True, emoji=False)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _BadInput(f"cannot read {path}: {exc.strerror or exc}") from exc


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="capf")
def cli() -> None:
    """Cisco CAPF tools: analyze CAPF Online CA logs, inspect LSCs and CTL/ITL files, decode CAPF messages.

    Exit codes: 0 nothing wrong found, 1 a problem was found, 2 usage error, 3 unreadable or malformed input.
    """


# -- capf logs analyze -----------------------------------------------------------------------------------------


@cli.group()
def logs() -> None:
    """Work with the logs of the CAPF Online CA chain (CAPF traces, CiscoRA/nginx error.log, IIS logs)."""


@logs.command("analyze")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--timeline", is_flag=True, help="Also print the timeline per device and per request.")
def logs_analyze(files: tuple[Path, ...], as_json: bool, timeline: bool) -> None:
    """Name the common problems the log FILES show, with evidence lines and the fix.

    FILES may mix CAPF traces (capf*.txt), CiscoRA/nginx error.log files and IIS W3C logs (u_ex*.log); the kind
    of each is detected from its content. A folder stands for the files directly in it (files in no known log
    format are listed and skipped). Exit code 0 when the logs look healthy, 1 when a problem was found, 3 when a
    file cannot be read or no file holds a known log format.
    """
    paths: list[Path] = []
    for path in files:
        if path.is_dir():
            paths.extend(sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")))
        else:
            paths.append(path)
    try:
        report = _analyze_with_progress(paths)
    except CapfError as exc:
        _fail(exc)
    if as_json:
        _echo_json(report.to_dict())
    else:
        _print_report(report, timeline)
    if report.verdict == "no-data":
        raise _BadInput("no entry of a CAPF trace, CiscoRA/nginx error.log or IIS W3C log was found in the files")
    click.get_current_context().exit(EXIT_PROBLEM if report.findings else EXIT_OK)


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def _analyze_with_progress(paths: list[Path]) -> Report:
    """``analyze`` with a progress bar on standard error when it is a terminal and there are several files."""
    if len(paths) < 2 or not _stderr_is_terminal():
        return analyze(paths)
    with Progress(console=Console(stderr=True, emoji=False), transient=True) as bar:
        task = bar.add_task("reading logs", total=len(paths))

        def advance(name: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=escape(Path(name).name))

        return analyze(paths, progress=advance)


def _grouped(findings: Sequence[Finding]) -> list[list[Finding]]:
    """The findings for the text output: one group per problem and fix for per-phone findings, in report order."""
    groups: dict[object, list[Finding]] = {}
    for index, finding in enumerate(findings):
        key = (finding.problem, finding.fix) if finding.device else index
        groups.setdefault(key, []).append(finding)
    return list(groups.values())


def _print_findings(console: Console, group: Sequence[Finding], timeline: bool) -> None:
    """One problem: the finding, or one block for the same problem on several phones ("20 phones: ...")."""
    first = group[0]
    console.print()
    if len(group) == 1:
        device = f" ({first.device})" if first.device else ""
        console.print(f"[bold red]{first.problem}[/bold red]{escape(device)}: {escape(first.title)}")
    else:
        console.print(f"{len(group)} phones: [bold red]{first.problem}[/bold red]: {escape(first.title)}")
        names = [f.device or "" for f in group]
        more = f" and {len(names) - _DEVICES_SHOWN} more" if len(names) > _DEVICES_SHOWN and not timeline else ""
        listed = names if timeline else names[:_DEVICES_SHOWN]
        console.print(f"  phones: {escape(', '.join(listed))}{more}")
    explanations = list(dict.fromkeys(f.explanation for f in group))
    prefix = f"{first.device}: " if len(explanations) > 1 else ""
    console.print(f"  {escape(prefix + explanations[0])}")
    if len(explanations) > 1:
        console.print(f"  ({len(explanations) - 1} other explanation(s) for the other phones: see --json)")
    alternatives = list(dict.fromkeys(a for f in group for a in f.alternatives))
    if alternatives:
        console.print(f"  also possible: {', '.join(alternatives)}")
    console.print(f"  [bold]Fix:[/bold] {escape(first.fix)}")
    for finding in group if timeline else group[:1]:
        heading = f"  Evidence ({finding.device}):" if len(group) > 1 else "  Evidence:"
        console.print(escape(heading))
        shown = finding.evidence if timeline else finding.evidence[:_EVIDENCE_SHOWN]
        for evidence in shown:
            console.print(f"    {escape(evidence.path)}:{evidence.line}: {escape(evidence.text)}")
        if len(shown) < len(finding.evidence):
            console.print(f"    ... {len(finding.evidence) - len(shown)} more (all with --timeline or --json)")
    if len(group) > 1 and not timeline:
        console.print(f"    ... the evidence of the other {len(group) - 1} phones with --timeline or --json")


def _print_report(report: Report, timeline: bool) -> None:
    console = _console()
    for log in report.files:
        kind = log.source or "not recognised"
        console.print(f"[dim]{escape(log.path)}: {kind}, {log.entries} entries[/dim]")
    if report.verdict == "healthy":
        console.print("[bold green]healthy[/bold green]: no known problem in these logs")
    elif report.verdict == "problems":
        count = len(_grouped(report.findings))
        each = f" ({len(report.findings)} findings)" if count != len(report.findings) else ""
        console.print(f"[bold red]{count} problem(s) found{each}[/bold red]")
    for group in _grouped(report.findings):
        _print_findings(console, group, timeline)
    if timeline:
        for device, entries in report.devices.items():
            console.print()
            console.print(f"[bold]Device {device}[/bold]")
            for entry in entries:
                console.print(f"  {escape(entry.path)}:{entry.line}: {escape(entry.message)}")
        for request in report.requests:
            console.print()
            related = f" (related: {', '.join(request.related)})" if request.related else ""
            console.print(f"[bold]Request {escape(request.id)}[/bold] {request.outcome}{escape(related)}")
            for entry in request.entries:
                console.print(f"  {escape(entry.path)}:{entry.line}: {escape(entry.message)}")


# -- capf lsc inspect ------------------------------------------------------------------------------------------


@cli.group()
def lsc() -> None:
    """Work with LSCs (Locally Significant Certificates)."""


@lsc.command("inspect")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--device", help="The device the LSC must belong to (default: the name in its common name).")
@click.option(
    "--issuer",
    type=click.Path(path_type=Path, dir_okay=False),
    help="PEM/DER file of the issuing CA: the LSC's signature is checked against it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def lsc_inspect(file: Path, device: str | None, issuer: Path | None, as_json: bool) -> None:
    """Show an LSC (PEM or DER; the leaf of a bundle) and check it against the LSC profile.

    Exit code 0 when the certificate follows the profile (warnings allowed), 1 when a deviation is an error,
    3 when the file is not a certificate or the device name is invalid.
    """
    try:
        certs = load_certificates(_read(file))
        cert = order_chain(certs)[0] if len(certs) > 1 else certs[0]
        issuer_cert = load_certificate(_read(issuer)) if issuer is not None else None
        result = check_lsc(cert, device, issuer=issuer_cert)
    except CapfError as exc:
        _fail(exc)
    if as_json:
        _echo_json(_lsc_dict(cert, result))
    else:
        _print_lsc(cert, result)
    click.get_current_context().exit(EXIT_OK if result.ok else EXIT_PROBLEM)


def _key_text(cert: x509.Certificate) -> str:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        return f"unreadable ({exc})"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size} bits"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    return type(key).__name__


def _lsc_dict(cert: x509.Certificate, result: LscCheck) -> dict[str, Any]:
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial_number": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "public_key": _key_text(cert),
        "device_name": result.device_name,
        "model": result.model,
        "ok": result.ok,
        "deviations": [{"code": d.code, "severity": d.severity, "message": d.message} for d in result.deviations],
    }


def _print_lsc(cert: x509.Certificate, result: LscCheck) -> None:
    console = _console()
    data = _lsc_dict(cert, result)
    for label, key in (
        ("Subject", "subject"),
        ("Issuer", "issuer"),
        ("Serial", "serial_number"),
        ("Not before", "not_before"),
        ("Not after", "not_after"),
        ("Public key", "public_key"),
        ("Device", "device_name"),
        ("Model", "model"),
    ):
        console.print(f"{label + ':':<12} {escape(str(data[key] if data[key] is not None else '-'))}")
    if not result.deviations:
        console.print("[bold green]LSC profile: ok[/bold green]")
    else:
        state = "[bold green]ok (with warnings)[/bold green]" if result.ok else "[bold red]deviations[/bold red]"
        console.print(f"LSC profile: {state}")
        for deviation in result.deviations:
            color = "red" if deviation.severity == "error" else "yellow"
            console.print(f"  [{color}]{deviation.severity}[/{color}] {deviation.code}: {escape(deviation.message)}")


# -- capf ctl show ------------------------------------------------------------------------------------------


@cli.group()
def ctl() -> None:
    """Work with CTL/ITL files (read-only)."""


@ctl.command("show")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the file as JSON.")
def ctl_show(file: Path, as_json: bool) -> None:
    """Print a CTL or ITL file: header, signer, signature check and each record with its role.

    Exit code 0 when the file parses (and its signature verifies or cannot be checked), 1 when the signature
    does not verify, 3 when the file is malformed.
    """
    try:
        parsed = parse_ctl(_read(file))
    except CapfError as exc:
        _fail(exc)
    verified = parsed.verify_signature()
    if as_json:
        _echo_json(_ctl_dict(parsed, verified))
    else:
        click.echo(format_ctl(parsed))
    click.get_current_context().exit(EXIT_PROBLEM if verified is False else EXIT_OK)


def _ctl_dict(parsed: CtlFile, verified: bool | None) -> dict[str, Any]:
    header = parsed.header
    return {
        "version": header.version,
        "header_length": header.header_length,
        "signer_version": header.signer_version,
        "signer_name": header.signer_name,
        "issuer_name": header.issuer_name,
        "serial_number": header.serial_number.hex(),
        "hash_algorithm": header.hash_algorithm,
        "signature_length": len(header.signature),
        "signature_valid": verified,
        "filename": header.filename,
        "timestamp": header.timestamp.isoformat() if header.timestamp else None,
        "records": [
            {
                "role": record.role.name if isinstance(record.role, CtlRole) else record.role,
                "subject_name": record.subject_name,
                "issuer_name": record.issuer_name,
                "serial_number": record.serial_number.hex(),
                "dns_name": record.dns_name,
                "certificate_length": len(record.certificate) if record.certificate is not None else None,
            }
            for record in parsed.records
        ],
    }


cli.add_command(decode)  # capf decode: CAPF messages element by element (capf_common._cli_decode)
