"""Pins the public surface of estclient.testing (the EST server): a change here is a change of the published API."""

from __future__ import annotations

import inspect

import estclient.testing

EXPECTED_ALL = {
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
}


def test_all_is_pinned() -> None:
    assert set(estclient.testing.__all__) == EXPECTED_ALL
    assert len(estclient.testing.__all__) == len(set(estclient.testing.__all__)), "duplicate names in __all__"


def test_every_public_name_exists_and_is_documented() -> None:
    for name in estclient.testing.__all__:
        obj = getattr(estclient.testing, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_local_ca_backend_implements_the_backend_protocol() -> None:
    backend = estclient.testing.LocalCaBackend()
    assert isinstance(backend, estclient.testing.EnrollmentBackend)
    assert isinstance(estclient.testing.ManualApproval(backend), estclient.testing.EnrollmentBackend)


def test_rejection_is_an_est_error() -> None:
    error = estclient.testing.EnrollmentRejected("template not allowed", http_status=403)
    assert isinstance(error, estclient.EstError)
    assert error.http_status == 403
    assert "template not allowed" in str(error)
