r"""The lab's Microsoft AD CS: certsrv's emulator set up as the seed's CA (``LAB\ciscora``, template ``CiscoRA``).

It serves ``/certsrv`` over TLS on loopback with the lab PKI's IIS certificate (or a broken variant for a fault),
Windows authentication (Negotiate and NTLM; Kerberos too when a keytab for ``HTTP/<host>`` is given), Extended
Protection required, and writes the IIS W3C log into the lab folder. The CA that signs the LSCs is the emulator's
own (its chain is what the RA fetches from ``certnew.p7b`` and serves at ``/cacerts``); the lab PKI's root is what
the TLS peers (RA, CAPF, phones) trust for each other's TLS certificates.

Example::

    pki = LabPki.create(folder / "pki")
    with start_adcs(pki, folder) as adcs:
        print(adcs.url, adcs.username)   # the password is adcs.password (never logged)
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from cryptography import x509

from capf_common import LSC_EXTENDED_KEY_USAGES
from capf_online_ca.faults import LabFault
from capf_online_ca.pki import LabPki
from certsrv.testing import AdcsEmulator, CertificateTemplate, ExtendedProtection, Faults, Policy

__all__ = ["CA_NAME", "IIS_LOG_NAME", "RA_TEMPLATE", "RA_USER", "LabAdcs", "start_adcs"]

#: The account the RA logs in with, as in the seed's IIS log (``MICHAMEN\ciscora``).
RA_USER = "LAB\\ciscora"
#: The template the RA enrolls with (the seed's "Online CA Template is CiscoRA").
RA_TEMPLATE = "CiscoRA"
#: The CA's name in the page headers and on its certificates (the seed's CA is LAB-DC-RTP).
CA_NAME = "LAB-DC-RTP"
#: The IIS log's file name in the lab folder (IIS names its daily logs u_exYYMMDD.log).
IIS_LOG_NAME = "u_ex_lab.log"


@dataclass
class LabAdcs:
    """A running lab AD CS.

    Attributes:
        emulator: The certsrv emulator (its ``faults`` can be changed while it runs).
        host: The host name in :attr:`url` (the IIS certificate's name in the good case).
        username: The RA's account.
        password: The RA's password (random per lab; never logged).
        template: The published template the RA should use.
        iis_log: The IIS W3C log file.
        trust_file: The PEM file a client of IIS trusts (the lab root).
    """

    emulator: AdcsEmulator
    host: str
    username: str
    password: str = field(repr=False)
    template: str
    iis_log: Path
    trust_file: Path

    @property
    def port(self) -> int:
        """The HTTPS port."""
        return self.emulator.port

    @property
    def url(self) -> str:
        """``https://HOST:PORT/certsrv``."""
        return self.url_for(self.host)

    def url_for(self, host: str) -> str:
        """The web enrollment URL with another host name (the ``dns`` fault uses one that does not resolve)."""
        return f"https://{host}:{self.port}/certsrv"

    @property
    def ca_chain(self) -> list[x509.Certificate]:
        """The AD CS CA certificate and its root (what ``certnew.p7b?ReqID=CACert`` returns)."""
        return self.emulator.ca.ca_chain()

    def stop(self) -> None:
        """Stop serving (the IIS log stays in the lab folder)."""
        self.emulator.stop()

    def __enter__(self) -> LabAdcs:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_adcs(
    pki: LabPki,
    folder: Path,
    *,
    fault: LabFault | None = None,
    host: str = "localhost",
    port: int = 0,
    password: str | None = None,
    keytab: str | os.PathLike[str] | None = None,
    extended_protection: ExtendedProtection = "required",
    language: str = "en",
    policy: Policy = Policy.ISSUE,
) -> LabAdcs:
    r"""Start the lab's AD CS on 127.0.0.1 and return it running.

    Args:
        pki: The lab PKI (its IIS certificates and root).
        folder: The lab folder: the IIS log is written there, the emulator's files under ``adcs/``.
        fault: The lab fault to reproduce: the IIS certificate variant, whether IIS sends its issuing CA, and the
            slow-authentication / slow-enrollment delays (``None``: a healthy CA).
        host: The host name in the URL (the lab PKI's IIS certificates are issued for it).
        port: The port (0: a free one).
        password: The RA account's password (default: a random one).
        keytab: A keytab with ``HTTP/<host>`` to accept Kerberos too (Negotiate); NTLM works without it.
        extended_protection: IIS Extended Protection (channel binding): ``"off"``, ``"accept"`` or ``"required"``.
        language: ``"en"`` or ``"de"``: the language of the AD CS pages.
        policy: What the CA does with requests for the RA's template: issue at once, keep them pending for a
            certificate manager (``emulator.approve(id)``), or deny.

    Returns:
        The running AD CS.
    """
    fault_settings = fault or LabFault("none", 0, "no fault")
    identity = pki.iis[fault_settings.iis_variant]
    cert_file = identity.chain_path if fault_settings.iis_sends_chain else identity.cert_path
    iis_log = folder / IIS_LOG_NAME
    secret = password or secrets.token_urlsafe(18)
    emulator = AdcsEmulator(
        users={RA_USER: secret},
        templates=[
            # The template an administrator sets up for phone LSCs: the LSC profile's extended key usages
            # (serverAuth, clientAuth, ipsecEndSystem) with digitalSignature + keyEncipherment.
            CertificateTemplate(RA_TEMPLATE, display_name="Cisco RA", policy=policy, ekus=LSC_EXTENDED_KEY_USAGES),
            CertificateTemplate("WebServer", display_name="Web Server"),
        ],
        auth=("negotiate", "ntlm"),
        keytab=keytab,
        extended_protection=extended_protection,
        language="de" if language == "de" else "en",
        ca_name=CA_NAME,
        port=port,
        server_name=host,
        tls_cert_file=cert_file,
        tls_key_file=identity.key_path,
        log_file=iis_log,
        workdir=folder / "adcs",
        faults=Faults(
            auth_delay=fault_settings.auth_delay,
            enroll_delay=fault_settings.enroll_delay,
            download_delay=fault_settings.download_delay,
        ),
    )
    emulator.start()
    return LabAdcs(emulator, host, RA_USER, secret, RA_TEMPLATE, iis_log, pki.trust_bundle)
