"""``capf-lab``: the whole CAPF Online CA chain on this machine in one command.

It makes the lab PKI, starts the AD CS emulator (IIS ``/certsrv`` with NTLM), the RA (EST over AD CS, CiscoRA's
role) and CAPF on loopback, enrolls N simulated phones (a mix of the four authentication modes) with a progress
bar, verifies that every LSC chains to the CA, prints a summary table, and leaves the three logs (CAPF trace,
nginx-style ``error.log``, IIS log) in the lab folder. It then runs ``capf logs analyze`` on those logs; with
``--fault NAME`` (one of the seed's common problems) it also runs ``certsrv check`` against the misconfigured RA
settings, and both must name the problem.

Exit codes: 0 success (healthy: every phone has a verified LSC and the analyzer finds nothing; with a fault: both
diagnostics name it), 1 otherwise, 2 usage errors.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric import ec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from capf_common import AuthType, CapfError, Curve, check_lsc, verify_chain
from capf_online_ca.adcs import LabAdcs, start_adcs
from capf_online_ca.capf_server import CapfServer, CapfSettings, EstSettings, SessionOutcome
from capf_online_ca.faults import FAULTS, LabFault, get_fault
from capf_online_ca.phone import ManufacturingCa, Phone, PhoneResult, run_phones
from capf_online_ca.pki import LabPki
from capf_online_ca.ra import LabRa, ra_settings, start_ra
from capf_online_ca.registry import DeviceConfig, DeviceRegistry, KeyOrder
from certsrv.testing import IisLogEntry
from estclient import ClientCertificate

__all__ = ["AUTH_MODES", "LabOptions", "LabReport", "PhoneRow", "main", "run_lab"]

#: The authentication modes the lab's phones cycle through.
AUTH_MODES = (AuthType.PASSWORD, AuthType.NO_PASSWORD, AuthType.MIC, AuthType.LSC)


@dataclass(frozen=True)
class LabOptions:
    """What one lab run does.

    Attributes:
        folder: The lab folder (PKI, logs, phone folders).
        phones: How many phones to enroll.
        concurrency: How many phones talk to CAPF at once.
        fault: The seed problem to reproduce, or ``None`` for a healthy chain.
        key: ``"rsa"`` (RSA 2048, Online CA's only key type) or ``"ec"`` (P-256; faster).
        attempts: Sessions each phone tries (CUCM phones retry a failed install 3 more times).
        retry_delay: Seconds between a phone's attempts.
        restart_ra_after: Restart the RA after this many phones finished (``None``: never).
        capf_port: CAPF's port (0: a free one).
    """

    folder: Path
    phones: int = 20
    concurrency: int = 10
    fault: LabFault | None = None
    key: str = "rsa"
    attempts: int = 4
    retry_delay: float = 1.0
    restart_ra_after: int | None = None
    capf_port: int = 0


@dataclass(frozen=True)
class PhoneRow:
    """One phone's line in the summary.

    Attributes:
        result: What the phone saw.
        status: The certificate status CAPF recorded (CUCM's label).
        capf_result: The CAPF operation result CAPF recorded (``None`` if none).
        chain_ok: Whether the phone's LSC chains to the AD CS CA.
        chain_detail: Why not, when it does not.
        profile: The LSC's departures from CUCM's LSC profile (``capf_common.check_lsc`` errors), if any.
        capf_detail: CAPF's one-line account of the operation's outcome (why it failed, e.g. the RA's answer).
    """

    result: PhoneResult
    status: str
    capf_result: str | None
    chain_ok: bool
    chain_detail: str = ""
    profile: tuple[str, ...] = ()
    capf_detail: str = ""

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready row."""
        return {
            **self.result.to_dict(),
            "status": self.status,
            "capf_result": self.capf_result,
            "chain_ok": self.chain_ok,
            "chain_detail": self.chain_detail,
            "profile": list(self.profile),
            "capf_detail": self.capf_detail,
        }


@dataclass
class LabReport:
    """The outcome of a lab run.

    Attributes:
        options: What was run.
        rows: One row per phone, in device order.
        logs: The log files (CAPF traces, error.log, IIS log).
        analysis: ``capf logs analyze --json`` output.
        check: ``certsrv check --json`` output (only with a fault).
        elapsed: Seconds for the phones.
        ca_request_ids: The AD CS request ids of the run, in submission order.
        sessions: CAPF's record of each session (per-hop timing: ``est_seconds``).
        iis_requests: The IIS log entries written while the phones ran (the RA's requests to AD CS).
    """

    options: LabOptions
    rows: list[PhoneRow] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    analysis: dict[str, object] = field(default_factory=dict)
    check: dict[str, object] | None = None
    elapsed: float = 0.0
    ca_request_ids: list[int] = field(default_factory=list)
    sessions: list[SessionOutcome] = field(default_factory=list)
    iis_requests: list[IisLogEntry] = field(default_factory=list)

    @property
    def analyzer_problems(self) -> list[str]:
        """The problem ids ``capf logs analyze`` named (findings and their alternatives)."""
        findings = self.analysis.get("findings", [])
        names: list[str] = []
        for finding in findings if isinstance(findings, list) else []:
            names.append(str(finding.get("problem")))
            names += [str(a) for a in finding.get("alternatives", [])]
        return list(dict.fromkeys(names))

    @property
    def ok(self) -> bool:
        """Healthy run: every phone installed a verified LSC and the logs are healthy. Fault run: both named it."""
        fault = self.options.fault
        if fault is None:
            return (
                all(r.result.succeeded and r.chain_ok for r in self.rows) and self.analysis.get("verdict") == "healthy"
            )
        check_problem = (self.check or {}).get("problem")
        return fault.analyzer_problem in self.analyzer_problems and check_problem == fault.check_problem

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready report."""
        fault = self.options.fault
        return {
            "ok": self.ok,
            "folder": str(self.options.folder),
            "fault": fault.name if fault else None,
            "phones": [r.to_dict() for r in self.rows],
            "elapsed": round(self.elapsed, 3),
            "ca_requests": len(self.ca_request_ids),
            "ca_request_ids_unique": len(set(self.ca_request_ids)) == len(self.ca_request_ids),
            "logs": [str(p) for p in self.logs],
            "analyzer": {"verdict": self.analysis.get("verdict"), "problems": self.analyzer_problems},
            "check": self.check,
        }


#: The console width when the output is not a terminal (a pipe, a file, CI) and COLUMNS is not set.
_PIPE_WIDTH = 200


def _device_names(count: int) -> list[str]:
    return [f"SEP00AB{index:08X}" for index in range(count)]


def _tool(name: str) -> str:
    """The path of one of the project's console scripts (next to this Python first)."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise click.ClickException(f"the '{name}' command is not installed; run 'uv sync' in the checkout")
    return found


def _run_json(args: Sequence[str], env: dict[str, str] | None = None) -> dict[str, object]:
    completed = subprocess.run(  # noqa: S603 (our own console scripts, arguments built here)
        list(args), capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300, check=False
    )
    try:
        data = json.loads(completed.stdout)
    except json.JSONDecodeError:
        return {"error": f"exit {completed.returncode}: {completed.stderr.strip() or completed.stdout.strip()}"}
    return data if isinstance(data, dict) else {"result": data}


def analyze_logs(paths: Sequence[Path]) -> dict[str, object]:
    """Run ``capf logs analyze --json`` on the lab's logs and return its report."""
    return _run_json([_tool("capf"), "logs", "analyze", "--json", *(str(p) for p in paths)])


def certsrv_check(adcs: LabAdcs, ra: LabRa, fault: LabFault | None) -> dict[str, object]:
    """Run ``certsrv check --json`` with the RA's (possibly misconfigured) AD CS settings."""
    settings = ra.settings
    args = [_tool("certsrv"), "--url", settings.url, "--auth", "ntlm", "--user", settings.username]
    args += ["--ca-file", str(adcs.trust_file), "--json"]
    if fault is not None and fault.check_timeout is not None:
        args += ["--timeout", str(fault.check_timeout)]
    args += ["check", "--template", settings.template, *(fault.check_args if fault else ())]
    return _run_json(args, {"CERTSRV_PASSWORD": settings.password})


def _registry_and_phones(
    options: LabOptions, pki: LabPki, factory: ManufacturingCa
) -> tuple[DeviceRegistry, list[Phone]]:
    registry = DeviceRegistry()
    phones = []
    key_order = KeyOrder.RSA_ONLY if options.key == "rsa" else KeyOrder.EC_ONLY
    for index, name in enumerate(_device_names(options.phones)):
        mode = AUTH_MODES[index % len(AUTH_MODES)]
        secret = f"{100000 + index}" if mode is AuthType.PASSWORD else None
        registry.add(DeviceConfig(name, mode, secret, key_order=key_order, curve=Curve.SECP256R1, model="CP-8865"))
        mic = factory.issue_mic(name, ec.generate_private_key(ec.SECP256R1()))  # real MICs are RSA 2048
        phones.append(
            Phone(
                name,
                options.folder / "phones" / name,
                auth_mode=mode,
                auth_string=secret or "",
                mic=mic,
                trust_file=pki.trust_bundle,
            )
        )
    return registry, phones


def _verify(phone: Phone, adcs: LabAdcs) -> tuple[bool, str, tuple[str, ...]]:
    lsc = phone.lsc
    if lsc is None:
        return False, "no LSC", ()
    chain = adcs.ca_chain
    profile = tuple(d.message for d in check_lsc(lsc, phone.name).deviations if d.severity == "error")
    try:
        verify_chain([lsc, *chain], [chain[-1]])
    except CapfError as exc:
        return False, str(exc), profile
    return True, "", profile


async def _run_phones(
    options: LabOptions,
    settings: CapfSettings,
    registry: DeviceRegistry,
    phones: list[Phone],
    ra: LabRa,
    on_result: Callable[[PhoneResult], None],
) -> tuple[list[PhoneResult], CapfServer]:
    finished = 0

    async def progress(result: PhoneResult) -> None:
        nonlocal finished
        finished += 1
        on_result(result)
        if options.restart_ra_after is not None and finished == options.restart_ra_after:
            await asyncio.to_thread(ra.restart)

    async with CapfServer(settings, registry) as capf:
        results = await run_phones(
            phones,
            "127.0.0.1",
            capf.port,
            concurrency=options.concurrency,
            attempts=options.attempts,
            retry_delay=options.retry_delay,
            on_result=progress,
        )
    return results, capf


def _let_adcs_drain(fault: LabFault | None) -> None:
    """Wait until AD CS has answered every request the RA sent, before the lab counts them.

    With a slow AD CS (the timeout faults) the RA gives up on a request after its limit, but AD CS still
    completes it when its delay is over: counted right after the phones, those requests would be missing. Every
    such request started before the last phone finished, so waiting the longest delay (plus a margin) suffices.
    """
    if fault is None:
        return
    delay = max(fault.auth_delay, fault.enroll_delay, fault.download_delay)
    if delay > 0:
        time.sleep(delay + 0.5)


def run_lab(options: LabOptions, on_result: Callable[[PhoneResult], None] | None = None) -> LabReport:
    """Run the lab: start AD CS, RA and CAPF, enroll the phones, verify, and run the diagnostics.

    Args:
        options: What to run.
        on_result: Called with each phone's result as it finishes (the progress bar).

    Returns:
        The report; the services are stopped and the logs stay in ``options.folder``.
    """
    folder = options.folder
    folder.mkdir(parents=True, exist_ok=True)
    pki = LabPki.create(folder / "pki")
    factory = ManufacturingCa.create(folder / "pki")
    report = LabReport(options)
    fault = options.fault
    with start_adcs(pki, folder, fault=fault) as adcs, start_ra(pki, folder, ra_settings(adcs, fault)) as ra:
        registry, phones = _registry_and_phones(options, pki, factory)
        client = ClientCertificate(pki.capf_client.cert, pki.capf_client.key, (pki.issuing_ca.cert,))
        est = EstSettings(
            ra.url,
            ra.trust_file,
            client_certificate=client,
            template=ra.settings.template,
            ca_host=adcs.host,
            ca_port=adcs.port,
        )
        settings = CapfSettings(
            pki.capf_server.chain_path,
            pki.capf_server.key_path,
            est,
            folder,
            lsc_issuers=adcs.ca_chain,
            mic_issuers=[factory.certificate],
            port=options.capf_port,
        )
        iis_before = len(adcs.emulator.access_log.entries)
        started = time.monotonic()
        results, capf = asyncio.run(
            _run_phones(options, settings, registry, phones, ra, on_result or (lambda _result: None))
        )
        report.elapsed = time.monotonic() - started
        _let_adcs_drain(fault)
        report.iis_requests = list(adcs.emulator.access_log.entries[iis_before:])
        report.sessions = list(capf.outcomes)
        for phone, result in zip(phones, results, strict=True):
            record = registry[phone.name]
            chain_ok, detail, profile = _verify(phone, adcs)
            capf_result = record.result.name if record.result is not None else None
            report.rows.append(
                PhoneRow(result, record.status.label, capf_result, chain_ok, detail, profile, record.detail)
            )
        report.ca_request_ids = [r.request_id for r in adcs.emulator.ca.requests]
        report.logs = [*capf.trace.files, ra.error_log, adcs.iis_log]
        if fault is not None:
            report.check = certsrv_check(adcs, ra, fault)
    report.analysis = analyze_logs(report.logs)
    return report


def _print_report(console: Console, report: LabReport) -> None:
    table = Table(title=f"capf-lab: {len(report.rows)} phones in {report.elapsed:.1f} s")
    table.add_column("device", no_wrap=True)
    for column in ("auth mode", "result", "CUCM status", "LSC serial", "chain", "time (s)"):
        table.add_column(column, overflow="fold")  # in a narrow terminal: wrapped, never cut with "…"
    for row in report.rows:
        result = row.result
        table.add_row(
            result.device,
            result.auth_mode,
            result.outcome.value + (f" ({result.attempts} attempts)" if result.attempts > 1 else ""),
            row.status,
            (result.lsc_serial or "-")[:12],  # the full serial is in the --json output
            "[green]ok[/]" if row.chain_ok else "[red]no[/]",
            f"{result.elapsed:.2f}",
        )
    console.print(table)
    installed = sum(r.result.succeeded for r in report.rows)
    verified = sum(r.chain_ok for r in report.rows)
    console.print(f"{installed}/{len(report.rows)} phones installed an LSC, {verified} LSCs chain to the CA")
    ids = report.ca_request_ids
    unique = "unique" if len(set(ids)) == len(ids) else "[red]NOT unique[/]"
    console.print(f"AD CS handled {len(ids)} requests, request ids {unique}")
    for row in report.rows:
        if row.result.detail and not row.result.succeeded:
            console.print(f"  {row.result.device}: {row.result.detail}", markup=False)
            if row.capf_detail:
                console.print(f"    CAPF: {row.capf_detail}", markup=False)
    notes = sorted({note for row in report.rows for note in row.profile})
    for note in notes:
        count = sum(note in row.profile for row in report.rows)
        console.print(f"[yellow]LSC profile[/] ({count} LSCs): {note}")
    console.print(f"logs in {report.options.folder}:")
    for path in report.logs:
        console.print(f"  {path}")
    console.print(
        f"capf logs analyze: {report.analysis.get('verdict', report.analysis.get('error'))}"
        + (f", problems: {', '.join(report.analyzer_problems)}" if report.analyzer_problems else "")
    )
    fault = report.options.fault
    if fault is not None:
        check = report.check or {}
        console.print(f"certsrv check: problem {check.get('problem', check.get('error'))}")
        console.print(
            f"fault {fault.name} (seed problem {fault.seed_problem}): expected analyzer '{fault.analyzer_problem}' "
            f"and check '{fault.check_problem}'"
        )
    console.print("[green]OK[/]" if report.ok else "[bold red]FAILED[/]")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The lab folder (default: ./lab/YYYYmmdd-HHMMSS, which git ignores).",
)
@click.option("--phones", type=click.IntRange(1, 10000), default=20, show_default=True, help="Phones to enroll.")
@click.option("--concurrency", type=click.IntRange(1, 1000), default=10, show_default=True, help="Phones at once.")
@click.option("--fault", type=click.Choice(list(FAULTS)), default=None, help="Reproduce one of the seed's problems.")
@click.option("--key", type=click.Choice(["rsa", "ec"]), default="rsa", show_default=True, help="Phone key type.")
@click.option("--attempts", type=click.IntRange(1, 10), default=None, help="Sessions per phone [4; 1 with --fault].")
@click.option("--restart-ra-after", type=click.IntRange(1), default=None, help="Restart the RA after N phones.")
@click.option(
    "--capf-port", type=click.IntRange(0, 65535), default=0, show_default=True, help="CAPF's port (0: a free one)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def cli(
    folder: Path | None,
    phones: int,
    concurrency: int,
    fault: str | None,
    key: str,
    attempts: int | None,
    restart_ra_after: int | None,
    capf_port: int,
    as_json: bool,
) -> None:
    """Run phones → CAPF → EST → RA → AD CS on this machine and check the result."""
    lab_folder = folder or Path("lab", f"{dt.datetime.now():%Y%m%d-%H%M%S}")
    options = LabOptions(
        lab_folder.resolve(),
        phones=phones,
        concurrency=concurrency,
        fault=get_fault(fault) if fault else None,
        key=key,
        attempts=attempts if attempts is not None else (1 if fault else 4),
        restart_ra_after=restart_ra_after,
        capf_port=capf_port,
    )
    console = Console(stderr=as_json, emoji=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = _PIPE_WIDTH  # rich's 80 columns outside a terminal would cut the table's cells
    with Progress(
        TextColumn("enrolling phones"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
    ) as progress:
        task = progress.add_task("phones", total=phones)
        report = run_lab(options, lambda _result: progress.advance(task))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(console, report)
    sys.exit(0 if report.ok else 1)


def main() -> None:
    """Entry point of the ``capf-lab`` console script."""
    cli()
