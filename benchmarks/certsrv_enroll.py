"""Enrollments against the AD CS emulator: HTTP requests per issued certificate and enrollments per second.

Runs, in one process and against one emulator (real TLS on loopback, real NTLM and Kerberos handshakes):

* the baseline: a replay of the seed's RA, seven requests per certificate as its IIS log shows them
  (401, 301, certrqxt.asp, 401, 301, certfnsh.asp, certnew.cer), two new TLS connections per certificate;
* ``CertsrvClient`` with NTLM: one kept-alive, authenticated connection for every enrollment;
* ``CertsrvClient`` with Kerberos, against a throwaway MIT KDC on 127.0.0.1 (skipped with the reason when the MIT
  programs or python-gssapi are missing).

Requests are counted from the emulator's IIS access log (401 challenges included). The target is at most 2.05
requests per certificate. Usage: ``uv run python benchmarks/certsrv_enroll.py [ENROLLMENTS]`` (default 100).
"""

from __future__ import annotations

import os
import re
import ssl
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: benchmarks/ and tests/

import httpx
from benchmarks._common import Measurement, measure, print_table
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.certsrv._emulator_helpers import CurlLikeNtlm  # NTLM as the seed's RA (curl) sends it

from certsrv import CertsrvClient, Issued
from certsrv.testing import AdcsEmulator, CertificateTemplate

TARGET_REQUESTS_PER_CERT = 2.05
USER, PASSWORD = "EXAMPLE\\ciscora", "Passw0rd!"
TEMPLATE = "CiscoRA"


@dataclass
class Row:
    """One benchmark run: its measurement and the requests the emulator logged for it."""

    measurement: Measurement
    requests: int
    issued: int

    @property
    def per_cert(self) -> float:
        """HTTP requests per issued certificate."""
        return self.requests / self.issued if self.issued else float("nan")


def make_csrs(count: int) -> list[str]:
    """``count`` PEM requests (one EC key; made before any timing)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return [
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"SEP{i:012X}")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
        for i in range(count)
    ]


def seed_replay(emulator: AdcsEmulator, csrs: list[str]) -> int:
    """The seed RA's sequence for each CSR; returns the number of certificates issued."""
    context = ssl.create_default_context(cafile=str(emulator.ca_file))
    headers = {"User-Agent": "CiscoRA 1.0"}
    login = CurlLikeNtlm(USER, PASSWORD)
    issued = 0
    for csr in csrs:
        with httpx.Client(verify=context, headers=headers) as first:
            first.get(emulator.url, auth=login)
            first.get(emulator.url + "/certrqxt.asp")
        with httpx.Client(verify=context, headers=headers) as second:
            second.get(emulator.url, auth=login)
            form = {"Mode": "newreq", "CertRequest": csr, "CertAttrib": f"CertificateTemplate:{TEMPLATE}"}
            page = second.post(emulator.url + "/certfnsh.asp", data=form).text
            match = re.search(r"certnew\.cer\?ReqID=(\d+)&", page)
            if match:
                cert = second.get(emulator.url + f"/certnew.cer?ReqID={match.group(1)}&ENC=b64")
                issued += cert.status_code == 200 and b"BEGIN CERTIFICATE" in cert.content
    return issued


def client_run(make_client: Callable[[], CertsrvClient], csrs: list[str]) -> int:
    """Every CSR through one CertsrvClient; returns the number of certificates issued."""
    issued = 0
    with make_client() as client:
        for csr in csrs:
            issued += isinstance(client.submit(csr, TEMPLATE), Issued)
    return issued


def run(label: str, emulator: AdcsEmulator, work: Callable[[], int], count: int) -> Row:
    """Measure ``work`` and count the requests it caused in the emulator's access log."""
    emulator.access_log.clear()
    result: list[int] = []
    measurement = measure(label, count, lambda: result.append(work()))
    return Row(measurement, emulator.access_log.count(), result[0])


def kerberos_row(count: int, csrs: list[str], folder: Path) -> Row | str:
    """The Kerberos run against a throwaway KDC, or the reason it cannot run here."""
    from tests._support.kerberos import start_kdc, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        return reason
    kdc = start_kdc(folder / "kdc")
    try:
        os.environ.update(kdc.env)
        with AdcsEmulator(users={USER: PASSWORD}, templates=[CertificateTemplate(TEMPLATE)], keytab=kdc.keytab) as em:

            def make() -> CertsrvClient:
                return CertsrvClient(
                    em.url, auth="kerberos", username=kdc.principal, password=kdc.password, ca_file=em.ca_file
                )

            return run("CertsrvClient, Kerberos, kept alive", em, lambda: client_run(make, csrs), count)
    finally:
        kdc.stop()


def main() -> None:
    """Run the three measurements and print the comparison."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    csrs = make_csrs(count)
    rows: list[Row] = []
    skipped: str | None = None
    with AdcsEmulator(users={USER: PASSWORD}, templates=[CertificateTemplate(TEMPLATE)]) as emulator:
        baseline = run("seed RA replay (7 requests, NTLM)", emulator, lambda: seed_replay(emulator, csrs), count)

        def make() -> CertsrvClient:
            return CertsrvClient(emulator.url, auth="ntlm", username=USER, password=PASSWORD, ca_file=emulator.ca_file)

        rows.append(baseline)
        rows.append(run("CertsrvClient, NTLM, kept alive", emulator, lambda: client_run(make, csrs), count))
    with tempfile.TemporaryDirectory(prefix="certsrv-bench-") as folder:
        kerberos = kerberos_row(count, csrs, Path(folder))
    if isinstance(kerberos, Row):
        rows.append(kerberos)
    else:
        skipped = kerberos

    print(f"{count} enrollments per run; requests counted from the emulator's IIS access log (401s included)\n")
    print(f"{'run':<44} {'issued':>6} {'requests':>9} {'req/cert':>9} {'enroll/s':>9}")
    for row in rows:
        m = row.measurement
        print(f"{m.label:<44} {row.issued:>6} {row.requests:>9} {row.per_cert:>9.2f} {m.per_second:>9.1f}")
    if skipped:
        print(f"{'CertsrvClient, Kerberos, kept alive':<44} skipped: {skipped}")
    print()
    print_table([r.measurement for r in rows], baseline.measurement)
    print()
    for row in rows[1:]:
        verdict = "met" if row.per_cert <= TARGET_REQUESTS_PER_CERT else "NOT met"
        print(
            f"{row.measurement.label}: {row.per_cert:.2f} requests per certificate "
            f"(target <= {TARGET_REQUESTS_PER_CERT}: {verdict}; the seed's RA: {baseline.per_cert:.2f})"
        )


if __name__ == "__main__":
    main()
