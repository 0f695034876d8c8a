"""The problems the log analyzer names: stable identifiers, titles and fixes.

The first eight are the seed's "common problems" (Cisco's troubleshooting guide for CAPF Online CA); the others
are the failure signatures the same logs carry (libest and curl error codes, CAPF operation results).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["ProblemInfo", "PROBLEMS"]


@dataclass(frozen=True)
class ProblemInfo:
    """What the analyzer knows about one problem.

    Attributes:
        id: The stable identifier (``missing-issuer``, ``dns``, ...).
        title: One line naming the problem.
        fix: What to do about it.
        seed_problem: The number of the seed's common problem (1-8), or ``None`` for the extra signatures.
    """

    id: str
    title: str
    fix: str
    seed_problem: int | None = None


_RESTART = "Restart the Cisco Certificate Authority Proxy Function service afterwards (it restarts CES)."

PROBLEMS: Mapping[str, ProblemInfo] = MappingProxyType(
    {
        p.id: p
        for p in (
            ProblemInfo(
                "missing-issuer",
                "A CA certificate is missing from the issuer chain of the IIS certificate (CES cannot verify it)",
                "Upload the root CA certificate and every intermediate CA certificate that issued the IIS HTTPS "
                "certificate to CAPF-trust and CallManager-trust, and let IIS send its intermediates. If IIS "
                "presents a self-signed certificate instead, replace it with one issued by the CA. " + _RESTART,
                1,
            ),
            ProblemInfo(
                "self-signed",
                "The CA web server (IIS) presents a self-signed certificate",
                "Self-signed IIS certificates are not supported, even when uploaded to CAPF-trust: issue the IIS "
                "HTTPS certificate from the CA, bind it to the site, and upload the CA root to CAPF-trust and "
                "CallManager-trust. " + _RESTART,
                2,
            ),
            ProblemInfo(
                "hostname-mismatch",
                "The Online CA host name does not match the common name of the IIS certificate",
                "Set the service parameter Online CA Hostname to the fully qualified name the IIS certificate "
                "carries (CN/SAN), or reissue the IIS certificate for the configured name. " + _RESTART,
                3,
            ),
            ProblemInfo(
                "dns",
                "The Online CA host name cannot be resolved (DNS)",
                "Check the Online CA Hostname service parameter for typos and that CUCM's DNS servers resolve it "
                "(utils network host NAME). " + _RESTART,
                4,
            ),
            ProblemInfo(
                "not-yet-valid",
                "A certificate of the CA web server is not yet valid (clock or NTP problem)",
                "Check NTP on CUCM (utils ntp status) and the clocks of the CA and IIS servers; the certificate's "
                "validity must include the current time on every server. Reissue it if its dates are wrong.",
                5,
            ),
            ProblemInfo(
                "expired",
                "A certificate of the CA web server has expired (or a clock runs ahead)",
                "Renew the expired IIS/CA certificate and upload the new CA certificates to CAPF-trust and "
                "CallManager-trust; check NTP on CUCM (utils ntp status) and the CA servers.",
                5,
            ),
            ProblemInfo(
                "template-typo",
                "The certificate template is misconfigured (the CA refuses the request for the template named)",
                "Set the service parameter Online CA Template to the template name exactly as the CA knows it "
                "(the template name, not its display name), publish it under Certificate Templates to Issue, "
                "and grant the CiscoRA account Enroll permission. " + _RESTART,
                6,
            ),
            ProblemInfo(
                "auth-timeout",
                "CES timed out while authenticating to the CA web enrollment (/certsrv login)",
                "The RA-to-CA timeout (10 seconds in CUCM's CES) cannot be configured (CSCvo58656, CSCvf83629): "
                "make IIS answer within it (IIS and domain controller load, NTLM authentication latency, network "
                "path), then restart CAPF.",
                7,
            ),
            ProblemInfo(
                "enroll-timeout",
                "CES timed out waiting for the CA after authenticating (enrollment or CA chain request)",
                "The CA took longer than the RA-to-CA timeout (10 seconds in CUCM's CES, not configurable: "
                "CSCvo58656) to answer: check the AD CS and IIS load and logs for this request, then retry the "
                "operation.",
                8,
            ),
            ProblemInfo(
                "est-auth-failure",
                "EST authentication failed (EST_ERR_AUTH_FAIL): CES answered the enrollment with 401",
                "Check the Online CA Username and Online CA Password service parameters (the account CES uses at "
                "the CA) and CiscoRA's nginx error.log for the step that failed. " + _RESTART,
            ),
            ProblemInfo(
                "ssl-read-error",
                "CAPF's EST client got no answer from CES (EST_ERR_SSL_READ)",
                "CES closed the connection or did not answer within the EST client's read timeout: the cause is on "
                "the CES/CA side. Read CiscoRA's nginx error.log and the IIS log of the same minute.",
            ),
            ProblemInfo(
                "connect-failed",
                "No connection to the CA web server (wrong port, IIS down, or a firewall)",
                "Check the Online CA Port service parameter, that IIS listens on it, and the network path.",
            ),
            ProblemInfo(
                "tls-handshake",
                "The TLS handshake with the CA web server failed",
                "Check the protocol versions and cipher suites IIS allows (CES uses CiscoSSL/OpenSSL 1.0.2).",
            ),
            ProblemInfo(
                "ca-auth-failure",
                "The CA web server rejected the Online CA credentials (401 with a user name)",
                "Correct the Online CA Username/Password service parameters, enable Windows Authentication with "
                "NTLM for /certsrv in IIS (Kerberos is not supported). " + _RESTART,
            ),
            ProblemInfo(
                "enrollment-failed",
                "The EST enrollment failed with another libest error",
                "Look up the EST_ERR_* code shown and read CiscoRA's nginx error.log for the same request.",
            ),
            ProblemInfo(
                "unknown-device",
                "CAPF refused a phone it has no record of (unknown device)",
                "Add the phone in CUCM (Device > Phone, with the CAPF operation to perform) or check the device "
                "name: it must be the name CUCM knows, exactly (SEP followed by the phone's MAC address, or the "
                "Jabber device name). Then let the phone contact CAPF again (reset it or wait for its next attempt).",
            ),
            ProblemInfo(
                "capf-operation-failed",
                "CAPF recorded a failed certificate operation",
                "Follow the corrective action of the CAPF error code shown.",
            ),
        )
    }
)
