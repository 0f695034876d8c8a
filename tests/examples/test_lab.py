"""``capf-lab`` end to end: phones → CAPF → EST → RA → AD CS emulator on loopback, a fresh lab per test.

Every authentication mode with RSA and with EC keys, each of the seed's common problems named by both
diagnostics (``capf logs analyze`` and ``certsrv check``), a restart of the RA in the middle of a run, and the
load run of the issue (200 phones at concurrency 20, nothing lost).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from capf_common import check_lsc
from capf_online_ca.faults import FAULTS, get_fault
from capf_online_ca.lab import LabOptions, cli, run_lab
from capf_online_ca.phone import PhoneOutcome


@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_healthy_lab_every_auth_mode(key: str, tmp_path: Path) -> None:
    report = run_lab(LabOptions(tmp_path, phones=4, concurrency=4, key=key))

    assert report.ok, report.to_dict()
    assert sorted(r.result.auth_mode for r in report.rows) == ["LSC", "MIC", "NO_PASSWORD", "PASSWORD"]
    for row in report.rows:
        assert row.result.outcome is PhoneOutcome.INSTALLED
        assert row.chain_ok, row.chain_detail
        assert row.profile == ()  # the LSC fits CUCM's profile (key usage, EKUs, SAN URI)
        assert row.status == "Upgrade Success" and row.capf_result == "CAPF_OP_SUCCESS"
        assert row.result.key_type == ("RSA 2048" if key == "rsa" else "EC secp256r1")
    assert len({r.result.lsc_serial for r in report.rows}) == 4
    assert len(report.ca_request_ids) == 4
    assert report.analysis["verdict"] == "healthy"
    names = sorted(p.name for p in report.logs)
    assert names == ["capf00000001.txt", "error.log", "u_ex_lab.log"]
    assert all(p.parent == tmp_path and p.stat().st_size > 0 for p in report.logs)
    trace = (tmp_path / "capf00000001.txt").read_text()
    assert "CServiceParameters::OnlineCAInit() Online CA Template is CiscoRA" in trace
    assert trace.count("Online Cert Signing successful") == 4
    _assert_lab_lscs_fit_the_profile(tmp_path, [r.result.device for r in report.rows])


def _assert_lab_lscs_fit_the_profile(folder: Path, devices: list[str]) -> None:
    """Every LSC the lab issued passes capf_common's LSC profile check with no deviation, warnings included."""
    for device in devices:
        lsc = x509.load_pem_x509_certificate((folder / "phones" / device / "lsc.pem").read_bytes())
        check = check_lsc(lsc, device)  # the chain to the CA is the row's chain_ok (verify_chain)
        assert check.ok, check.deviations
        assert check.deviations == (), check.deviations  # key usage, EKUs, SAN URI, CN form, signature hash
        assert check.device_name == device and check.model == "CP-8865"  # the Online CA form CP-8865-SEP…
        usage = lsc.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature and usage.key_encipherment
        ekus = set(lsc.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        assert ekus == {
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.CLIENT_AUTH,
            x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),  # id-kp-ipsecEndSystem
        }
        lsc.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)  # raises ExtensionNotFound if absent


@pytest.mark.parametrize("name", list(FAULTS))
def test_each_fault_is_named_by_both_diagnostics(name: str, tmp_path: Path) -> None:
    fault = get_fault(name)
    report = run_lab(LabOptions(tmp_path, phones=1, fault=fault, key="ec", attempts=1))

    assert fault.analyzer_problem in report.analyzer_problems, report.analyzer_problems
    assert report.check is not None and report.check.get("problem") == fault.check_problem, report.check
    assert report.ok
    (row,) = report.rows
    assert row.result.outcome is PhoneOutcome.REFUSED
    assert row.result.detail == "CAPF ended the session with reason INVALID_ELEMENT (7)", row.result.detail
    assert row.capf_result == "CAPF_OP_FAIL"
    assert row.status.startswith("Upgrade Failed: CA ")
    trace = next(p for p in report.logs if p.name.startswith("capf")).read_text()
    assert "Online Cert Signing Failed" in trace
    submissions = [  # the POSTs AD CS answered (a 401 is an NTLM leg on a new connection, not a submission)
        e
        for e in report.iis_requests
        if e.method == "POST" and e.uri_stem.endswith("/certfnsh.asp") and e.status == 200
    ]
    if name == "enroll-timeout":  # counted after AD CS finished the submissions the RA had given up on
        assert len(submissions) >= 1
    assert len(report.ca_request_ids) == len(submissions), (report.ca_request_ids, submissions)
    if name == "template-typo":  # the administrator is pointed at the template, not at CAPF's credentials
        client_error = next(line for line in trace.splitlines() if "EST client error:" in line)
        assert "Online CA Template" in client_error and "the CA offers: CiscoRA" in client_error, client_error
        assert "Check the user name and password" not in client_error, client_error
        assert "Online CA Template" in row.capf_detail, row.capf_detail  # the lab summary prints it


def test_ra_restart_in_the_middle_loses_no_phone(tmp_path: Path) -> None:
    report = run_lab(
        LabOptions(tmp_path, phones=12, concurrency=4, key="ec", attempts=6, retry_delay=1.0, restart_ra_after=4)
    )
    assert all(r.result.outcome is PhoneOutcome.INSTALLED and r.chain_ok for r in report.rows), report.to_dict()
    assert len({r.result.lsc_serial for r in report.rows}) == 12
    ids = report.ca_request_ids
    assert len(ids) == len(set(ids)) >= 12
    error_log = next(p for p in report.logs if p.name == "error.log").read_text()
    assert error_log.count("CA Cert chain retrieved from CA, will be passed to EST") == 2  # started twice


def test_load_200_phones_at_concurrency_20(tmp_path: Path) -> None:
    report = run_lab(LabOptions(tmp_path, phones=200, concurrency=20, key="ec"))
    assert report.ok, report.analyzer_problems
    assert len(report.rows) == 200
    assert all(r.result.outcome is PhoneOutcome.INSTALLED and r.chain_ok for r in report.rows)
    assert all(r.result.attempts == 1 for r in report.rows)  # nothing failed, so nothing was retried
    assert len({r.result.lsc_serial for r in report.rows}) == 200
    assert len(report.ca_request_ids) == len(set(report.ca_request_ids)) == 200
    assert report.analysis["verdict"] == "healthy"


def test_cli_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--folder", str(tmp_path), "--phones", "2", "--key", "ec", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["fault"] is None
    assert [p["result"] for p in data["phones"]] == ["installed", "installed"]
    assert data["analyzer"] == {"verdict": "healthy", "problems": []}


def test_cli_summary_is_not_cut_outside_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    result = CliRunner().invoke(cli, ["--folder", str(tmp_path), "--phones", "2", "--key", "ec"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output, result.output  # no cell truncated to fit 80 columns
    rows = [line for line in result.output.splitlines() if "SEP00AB0000000" in line]
    assert len(rows) == 2 and all("installed" in row and "Upgrade Success" in row for row in rows), result.output


def test_cli_refuses_an_unknown_fault(tmp_path: Path) -> None:
    bad = CliRunner().invoke(cli, ["--folder", str(tmp_path), "--fault", "no-such-fault"])
    assert bad.exit_code == 2 and "no-such-fault" in bad.output
