r"""An AD CS web enrollment emulator for tests, labs and users' own test suites.

:class:`AdcsEmulator` serves the IIS ``/certsrv`` pages (real AD CS markup, English or German) over HTTP/1.1 and
TLS on loopback, with IIS-like Windows authentication (Negotiate, NTLM, optionally Basic; Extended Protection off,
accept or required), a CA with templates, policies, renewals and CRLs (:class:`EmulatedCa`), faults on demand
(:class:`Faults`) and an IIS W3C access log (:class:`IisLog`)::

    from certsrv import CertsrvClient
    from certsrv.testing import AdcsEmulator, CertificateTemplate, Policy

    with AdcsEmulator(
        users={"EXAMPLE\\alice": "Passw0rd!"},
        templates=[CertificateTemplate("WebServer"), CertificateTemplate("Manual", policy=Policy.PENDING)],
    ) as emulator:
        with CertsrvClient(emulator.url, auth="ntlm", username="EXAMPLE\\alice", password="Passw0rd!",
                           ca_file=emulator.ca_file) as client:  # trust emulator.ca_file
            pending = client.submit(csr_pem, "Manual")
            emulator.approve(pending.request_id)  # what a certificate manager does
            issued = client.retrieve(pending.request_id)
        print(emulator.access_log.text())
"""

from __future__ import annotations

from certsrv.testing._ca import CaRequest, CertificateTemplate, Disposition, EmulatedCa, HResult, Policy
from certsrv.testing._emulator import AdcsEmulator, AuthDecision, AuthScheme, ExtendedProtection, Faults
from certsrv.testing._iislog import IisLog, IisLogEntry

__all__ = [
    "AdcsEmulator",
    "AuthDecision",
    "AuthScheme",
    "CaRequest",
    "CertificateTemplate",
    "Disposition",
    "EmulatedCa",
    "ExtendedProtection",
    "Faults",
    "HResult",
    "IisLog",
    "IisLogEntry",
    "Policy",
]
