"""An EST server for tests, labs and users' own test suites (``from estclient.testing import EstServer``).

``EstServer`` speaks RFC 7030 (with RFC 8951's clarifications) over real TLS on loopback: all six operations, CA
labels, HTTP Basic and Digest authentication, TLS client certificates, proof-of-possession linking, a
manual-approval mode, and fault injection for clients' reliability tests. What it issues is decided by an
:class:`EnrollmentBackend`; :class:`LocalCaBackend` is a local CA, and other backends (an AD CS bridge, for
instance) implement the same protocol::

    from estclient.testing import EstServer

    with EstServer(users={"estuser": "estpwd"}) as server:
        print(server.url, server.ca_file)  # point any EST client here, trusting ca_file
"""

from __future__ import annotations

from estclient.testing._approval import ManualApproval, PendingRequest
from estclient.testing._backend import (
    EnrollmentBackend,
    EnrollmentRejected,
    Issued,
    IssuedWithKey,
    Pending,
    Requester,
)
from estclient.testing._faults import Fault, FaultKind
from estclient.testing._local_ca import LocalCa, LocalCaBackend
from estclient.testing._server import OPERATIONS, EstServer, RecordedRequest, TlsIdentity

__all__ = [
    "EstServer",
    "TlsIdentity",
    "RecordedRequest",
    "OPERATIONS",
    "EnrollmentBackend",
    "EnrollmentRejected",
    "Requester",
    "Issued",
    "IssuedWithKey",
    "Pending",
    "LocalCa",
    "LocalCaBackend",
    "ManualApproval",
    "PendingRequest",
    "Fault",
    "FaultKind",
]
