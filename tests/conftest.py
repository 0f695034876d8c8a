"""Fixtures shared by every package's tests: the test PKI and TLS servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._support.kerberos import Kdc, kerberos_required, start_kdc, unavailable_reason
from tests._support.ntlm import NtlmUserFile, write_ntlm_user_file
from tests._support.pki import TestPki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """The session's test PKI (root, intermediate, server, clients, RA and the broken variants)."""
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def pki_folder(pki: TestPki) -> Path:
    """The folder holding the test PKI's PEM files."""
    return pki.folder


@pytest.fixture
def ntlm_user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> NtlmUserFile:
    """An NTLM credentials file (``EXAMPLE:alice:Passw0rd!``, alice's UPN form, bob) set as ``NTLM_USER_FILE``."""
    users = write_ntlm_user_file(tmp_path)
    monkeypatch.setenv("NTLM_USER_FILE", str(users.path))
    return users


@pytest.fixture(scope="session")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kdc]:
    """An MIT KDC for EXAMPLE.TEST on 127.0.0.1 (alice + HTTP/localhost keytab), its variables set for the session.

    Skips with the reason (the Debian packages to install) when the MIT programs are missing; fails instead when
    ``REQUIRE_KERBEROS=1``. Tests using it carry the ``kerberos`` marker.
    """
    reason = unavailable_reason()
    if reason is not None:
        if kerberos_required():
            pytest.fail(f"REQUIRE_KERBEROS=1 but {reason}")
        pytest.skip(reason)
    server = start_kdc(tmp_path_factory.mktemp("kdc"))
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name, value in server.env.items():
                mp.setenv(name, value)
            yield server
    finally:
        server.stop()
