"""NTLM test credentials: the users a pyspnego NTLM acceptor knows, written as an ``NTLM_USER_FILE``.

pyspnego's NTLM acceptor looks users up in the flat file named by the environment variable ``NTLM_USER_FILE``,
one ``DOMAIN:USER:PASSWORD`` per line. The domain must match what the client sends (``EXAMPLE\\alice``); a user
given as a UPN (``alice@EXAMPLE.TEST``) is looked up in a line with an empty domain (``:alice@EXAMPLE.TEST:...``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

NTLM_DOMAIN = "EXAMPLE"
NTLM_USER = "alice"
NTLM_PASSWORD = "Passw0rd!"
#: The same user in UPN form (the realm of the Kerberos fixture, so one name works for both).
NTLM_UPN = "alice@EXAMPLE.TEST"
NTLM_OTHER_USER = "bob"
NTLM_OTHER_PASSWORD = "B0b-s3cret!"


@dataclass(frozen=True)
class NtlmUserFile:
    """The credentials file and the first user in it."""

    path: Path
    domain: str = NTLM_DOMAIN
    user: str = NTLM_USER
    password: str = NTLM_PASSWORD
    upn: str = NTLM_UPN
    other_user: str = NTLM_OTHER_USER
    other_password: str = NTLM_OTHER_PASSWORD

    @property
    def down_level_name(self) -> str:
        """``DOMAIN\\user``, the form the acceptor matches against the file's first line."""
        return f"{self.domain}\\{self.user}"


def write_ntlm_user_file(folder: Path) -> NtlmUserFile:
    """Write ``ntlm-users`` (mode 0600) into ``folder``: alice (down-level and UPN form) and bob."""
    path = folder / "ntlm-users"
    lines = [
        f"{NTLM_DOMAIN}:{NTLM_USER}:{NTLM_PASSWORD}",
        f":{NTLM_UPN}:{NTLM_PASSWORD}",
        f"{NTLM_DOMAIN}:{NTLM_OTHER_USER}:{NTLM_OTHER_PASSWORD}",
    ]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return NtlmUserFile(path)
