"""The lab's faults: the seed's eight common problems, each as a small description of how the lab is set up.

A :class:`LabFault` says which IIS certificate AD CS presents (and whether IIS sends its issuing CA along), which
host name and template the RA is configured with, which delays AD CS injects and which time limits the RA uses.
:mod:`capf_online_ca.adcs` and :mod:`capf_online_ca.ra` read it; nothing here runs anything. Each fault also
names the problem id ``capf_common.analyze`` must report for the RA's error.log and the IIS log, and the problem
``certsrv check`` reports (``None`` when the check cannot see it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["FAULTS", "LabFault", "UnknownFaultError", "get_fault"]

#: The RA's limits in the timeout faults, and AD CS's delays: the delay is well above the limit.
_SHORT_LIMIT = 1.0
_LONG_DELAY = 3.0


@dataclass(frozen=True)
class LabFault:
    """How the lab reproduces one of the seed's common problems.

    Attributes:
        name: The fault's name (``capf-lab --fault NAME``) and the problem id the analyzer names.
        seed_problem: The number of the seed's common problem (1-8).
        description: What is wrong, in one sentence.
        iis_variant: The lab PKI's IIS certificate variant AD CS presents (see ``pki.IIS_VARIANTS``).
        iis_sends_chain: Whether IIS sends its issuing CA after its certificate (``False``: the leaf alone).
        ca_host: The host name the RA uses in the CA URL instead of the lab host (``None``: the lab host).
        template: The template the RA asks for instead of the published one (``None``: the published one).
        auth_delay: Seconds AD CS waits before each authentication challenge (401).
        enroll_delay: Seconds AD CS waits before answering a submitted request (certfnsh.asp).
        download_delay: Seconds AD CS waits before sending certificates and chains (certnew.cer, certnew.p7b).
        ra_auth_timeout: The RA's authentication time limit (``None``: the RA's default).
        ra_enroll_timeout: The RA's enrollment time limit (``None``: the RA's default).
        ra_retrieval_timeout: The RA's time limit for certificates and the CA chain (``None``: the RA's default).
        analyzer_problem: The problem id ``capf_common.analyze`` names for the RA's error.log and the IIS log.
        check_problem: The problem ``certsrv check`` names (its ``template`` stands for ``template-typo``), or
            ``None`` when the check cannot see the fault.
        check_timeout: The ``--timeout`` to give ``certsrv check`` (``None``: its default).
        check_args: More arguments for ``certsrv check`` (``--test-enroll`` to submit a throwaway request).
    """

    name: str
    seed_problem: int
    description: str
    iis_variant: str = "good"
    iis_sends_chain: bool = True
    ca_host: str | None = None
    template: str | None = None
    auth_delay: float = 0.0
    enroll_delay: float = 0.0
    download_delay: float = 0.0
    ra_auth_timeout: float | None = None
    ra_enroll_timeout: float | None = None
    ra_retrieval_timeout: float | None = None
    analyzer_problem: str = ""
    check_problem: str | None = None
    check_timeout: float | None = None
    check_args: tuple[str, ...] = ()


FAULTS: Mapping[str, LabFault] = MappingProxyType(
    {
        f.name: f
        for f in (
            LabFault(
                "missing-issuer",
                1,
                "IIS presents its certificate without the issuing CA, and the RA trusts only the root.",
                iis_sends_chain=False,
                analyzer_problem="missing-issuer",
                check_problem="missing-issuer",
            ),
            LabFault(
                "self-signed",
                2,
                "IIS presents a self-signed certificate.",
                iis_variant="self-signed",
                analyzer_problem="self-signed",
                check_problem="self-signed",
            ),
            LabFault(
                "hostname-mismatch",
                3,
                "The IIS certificate names 'lab-dc', not the host name in the RA's CA URL.",
                iis_variant="hostname-mismatch",
                analyzer_problem="hostname-mismatch",
                check_problem="hostname-mismatch",
            ),
            LabFault(
                "dns",
                4,
                "The RA's CA URL names a host that does not resolve (under .invalid, RFC 6761).",
                ca_host="lab-dcc.invalid",
                analyzer_problem="dns",
                check_problem="dns",
            ),
            LabFault(
                "not-yet-valid",
                5,
                "The IIS certificate becomes valid only in 30 days (as after a clock or NTP problem).",
                iis_variant="not-yet-valid",
                analyzer_problem="not-yet-valid",
                check_problem="not-yet-valid",
            ),
            LabFault(
                "template-typo",
                6,
                "The RA asks for the template 'CiscoRAA', which the CA does not publish.",
                template="CiscoRAA",
                analyzer_problem="template-typo",
                check_problem="template",
            ),
            LabFault(
                "auth-timeout",
                7,
                "AD CS answers each authentication step after 3 s; the RA allows 1 s.",
                auth_delay=_LONG_DELAY,
                ra_auth_timeout=_SHORT_LIMIT,
                analyzer_problem="auth-timeout",
                check_problem="auth-timeout",
                check_timeout=_SHORT_LIMIT,
            ),
            LabFault(
                "enroll-timeout",
                8,
                "After the login AD CS answers slowly (3 s) for the CA chain and for submitted requests; the RA "
                "allows 1 s (the seed's excerpt shows the CA chain request at start-up timing out).",
                enroll_delay=_LONG_DELAY,
                download_delay=_LONG_DELAY,
                ra_enroll_timeout=_SHORT_LIMIT,
                ra_retrieval_timeout=_SHORT_LIMIT,
                analyzer_problem="enroll-timeout",
                check_problem="enroll-timeout",
                check_timeout=_SHORT_LIMIT,
                check_args=("--test-enroll",),  # the check submits a throwaway request, as an enrollment would
            ),
        )
    }
)


class UnknownFaultError(ValueError):
    """A fault name the lab does not know."""


def get_fault(name: str) -> LabFault:
    """The fault called ``name``.

    Raises:
        UnknownFaultError: ``name`` is not one of :data:`FAULTS` (the message lists them).
    """
    try:
        return FAULTS[name]
    except KeyError:
        raise UnknownFaultError(
            f"unknown fault {name!r}. Fix: use one of {', '.join(FAULTS)} (the seed's common problems)."
        ) from None
