r"""Drop-in call names of the older ``certsrv`` package (magnuswatn/certsrv), on top of :class:`certsrv.CertsrvClient`.

Code written for that package keeps working after ``pip install adcs-certsrv`` and one changed import::

    # before: from certsrv import Certsrv, RequestDeniedException, CertificatePendingException
    from certsrv.compat import Certsrv, CertificatePendingException, RequestDeniedException

    ca = Certsrv("ca.example.com", "EXAMPLE\\alice", "secret", auth_method="ntlm", cafile="root.pem")
    try:
        pem = ca.get_cert(csr_pem, "WebServer")
    except CertificatePendingException as pending:
        pem = ca.get_existing_cert(pending.req_id)  # later, once a manager approved it

The same methods, arguments, defaults, return types (``bytes``) and exception names, with these differences:
``auth_method`` also takes ``"kerberos"`` and ``"negotiate"``, NTLM sends channel binding, and failures outside
the three exceptions (DNS, TLS, authentication, timeouts) raise certsrv's typed errors instead of
``requests`` exceptions. Every exception here also derives from :class:`certsrv.CertsrvError`. See the migration
guide in the documentation.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from certsrv._client import CertsrvClient
from certsrv._errors import AuthenticationError, CertsrvError, ConfigurationError, EnrollmentError
from certsrv._pages import decode_page
from certsrv._results import Issued
from certsrv._timeouts import Timeouts

__all__ = [
    "TIMEOUT",
    "CertificatePendingException",
    "Certsrv",
    "CouldNotRetrieveCertificateException",
    "RequestDeniedException",
    "check_credentials",
    "get_ca_cert",
    "get_cert",
    "get_chain",
    "get_existing_cert",
]

#: The default timeout in seconds, for every phase (as in the original package).
TIMEOUT = 30


class RequestDeniedException(CertsrvError):
    """The CA denied the request, or could not process it.

    Attributes:
        response: The CA's page (text), for diagnosis.
    """

    def __init__(self, message: str, response: Any) -> None:
        super().__init__(message)
        self.response = response


class CouldNotRetrieveCertificateException(CertsrvError):
    """The certificate could not be fetched (still pending, denied, unknown id, or not a certificate).

    Attributes:
        response: The CA's page, for diagnosis.
    """

    def __init__(self, message: str, response: Any) -> None:
        super().__init__(message)
        self.response = response


class CertificatePendingException(CertsrvError):
    """The request waits for a certificate manager; fetch it later with :meth:`Certsrv.get_existing_cert`.

    Attributes:
        req_id: The request id (a string, as in the original package).
    """

    def __init__(self, req_id: Any) -> None:
        super().__init__(
            f"request {req_id} is pending: a certificate manager must approve it before the certificate can be "
            f"fetched with get_existing_cert({req_id})"
        )
        self.req_id = req_id


def _encoding(encoding: str) -> serialization.Encoding:
    if encoding == "b64":
        return serialization.Encoding.PEM
    if encoding == "bin":
        return serialization.Encoding.DER
    raise ConfigurationError(f"encoding must be 'b64' (PEM) or 'bin' (DER), not {encoding!r}")


def _attribute_pairs(attributes: str | None) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for line in (attributes or "").replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ConfigurationError(f"attribute line {line!r} is not 'Name:Value'")
        pairs.append((name.strip(), value))
    return pairs


def _page(error: EnrollmentError) -> str:
    return decode_page(error.body) if error.body else ""


class Certsrv:
    r"""A Microsoft AD CS web enrollment server, with the call names of the older ``certsrv`` package.

    Args:
        server: The server's host name (the site is ``https://SERVER/certsrv/``).
        username: The user name (``DOMAIN\user`` or ``user@REALM``); for ``auth_method="cert"`` the path of the
            client certificate (PEM).
        password: The password; for ``auth_method="cert"`` the path of the certificate's unencrypted key (PEM).
        auth_method: ``"basic"`` (default), ``"ntlm"``, ``"cert"``, or (new) ``"kerberos"`` / ``"negotiate"``.
        cafile: PEM file of CA certificates to trust (default: the system store).
        timeout: Seconds allowed for each phase (connect, authentication, enrollment, retrieval).
        proxies: A mapping like ``{"https": "http://proxy:3128"}`` (the ``https`` entry is used).
    """

    def __init__(
        self,
        server: str,
        username: str,
        password: str,
        auth_method: str = "basic",
        cafile: str | os.PathLike[str] | None = None,
        timeout: float = TIMEOUT,
        proxies: dict[str, str] | None = None,
    ) -> None:
        if auth_method not in ("basic", "ntlm", "cert", "kerberos", "negotiate"):
            raise ConfigurationError(
                f"auth_method must be 'basic', 'ntlm', 'cert', 'kerberos' or 'negotiate', not {auth_method!r}"
            )
        self.server = server
        self.auth_method = auth_method
        self.timeout = timeout
        self.cafile = cafile
        self.proxies = proxies
        self._client = self._new_client(username, password)

    def _new_client(self, username: str, password: str) -> CertsrvClient:
        proxy = None
        if self.proxies:
            proxy = self.proxies.get("https") or self.proxies.get("all") or self.proxies.get("http")
        common: dict[str, Any] = {
            "ca_file": self.cafile,
            "timeouts": Timeouts.uniform(self.timeout),
            "proxy": proxy,
        }
        url = f"https://{self.server}/certsrv/"
        if self.auth_method == "cert":
            return CertsrvClient(url, auth="cert", client_cert=(username, password), **common)
        return CertsrvClient(url, auth=self.auth_method, username=username, password=password, **common)  # type: ignore[arg-type]

    def get_cert(self, csr: str | bytes, template: str, encoding: str = "b64", attributes: str | None = None) -> bytes:
        """Submit a CSR and return the issued certificate.

        Args:
            csr: The PKCS#10 request (PEM).
            template: The certificate template's name.
            encoding: ``"b64"`` for PEM, ``"bin"`` for DER.
            attributes: Extra request attributes, ``Name:Value`` lines.

        Returns:
            The certificate, PEM or DER.

        Raises:
            RequestDeniedException: the CA denied the request or could not process it.
            CertificatePendingException: a certificate manager must approve it first.
            CouldNotRetrieveCertificateException: issued, but could not be fetched.
        """
        enc = _encoding(encoding)
        try:
            result = self._client.submit(csr, template, _attribute_pairs(attributes))
        except EnrollmentError as exc:
            raise RequestDeniedException(exc.disposition_message or str(exc), _page(exc)) from exc
        if not isinstance(result, Issued):
            raise CertificatePendingException(str(result.request_id))
        return result.certificate.public_bytes(enc)

    def get_existing_cert(self, req_id: int | str, encoding: str = "b64") -> bytes:
        """Fetch the certificate of an earlier request.

        Args:
            req_id: The request id.
            encoding: ``"b64"`` for PEM, ``"bin"`` for DER.

        Returns:
            The certificate, PEM or DER.

        Raises:
            CouldNotRetrieveCertificateException: still pending, denied, unknown, or not a certificate.
        """
        enc = _encoding(encoding)
        try:
            request_id = int(req_id)
        except ValueError:
            raise ConfigurationError(f"req_id must be a request number, not {req_id!r}") from None
        try:
            return self._client.get_certificate(request_id).public_bytes(enc)
        except EnrollmentError as exc:
            raise CouldNotRetrieveCertificateException(exc.disposition_message or str(exc), _page(exc)) from exc

    def get_ca_cert(self, encoding: str = "b64") -> bytes:
        """The newest CA certificate, PEM (``"b64"``) or DER (``"bin"``).

        Raises:
            CouldNotRetrieveCertificateException: the CA certificate could not be fetched.
        """
        enc = _encoding(encoding)
        try:
            return self._client.get_ca_certificate().public_bytes(enc)
        except (EnrollmentError, ConfigurationError) as exc:
            raise CouldNotRetrieveCertificateException(str(exc), b"") from exc

    def get_chain(self, encoding: str = "bin") -> bytes:
        """The newest CA chain as PKCS#7: DER (``"bin"``, default) or PEM (``"b64"``).

        Raises:
            CouldNotRetrieveCertificateException: the chain could not be fetched.
        """
        enc = _encoding(encoding)
        try:
            chain = self._client.get_ca_chain()
        except (EnrollmentError, ConfigurationError) as exc:
            raise CouldNotRetrieveCertificateException(str(exc), b"") from exc
        return pkcs7.serialize_certificates(chain, enc)

    def check_credentials(self) -> bool:
        """Whether the server accepts the credentials (``True``) or answers 401 (``False``)."""
        try:
            self._client.authenticate()
        except AuthenticationError:
            return False
        return True

    def update_credentials(self, username: str, password: str) -> None:
        """Use other credentials from now on (the authenticated connection is closed and a new one made)."""
        old, self._client = self._client, self._new_client(username, password)
        old.close()

    def close(self) -> None:
        """Close the connection (new in this implementation)."""
        self._client.close()


def _deprecated(name: str) -> None:
    warnings.warn(
        f"certsrv.compat.{name}() is kept for old code; use the methods of certsrv.compat.Certsrv (or "
        f"certsrv.CertsrvClient) instead",
        DeprecationWarning,
        stacklevel=3,
    )


def get_cert(
    server: str, csr: str | bytes, template: str, username: str, password: str, encoding: str = "b64", **kwargs: Any
) -> bytes:
    """Deprecated module-level form of :meth:`Certsrv.get_cert` (``kwargs`` go to :class:`Certsrv`)."""
    _deprecated("get_cert")
    ca = Certsrv(server, username, password, **kwargs)
    try:
        return ca.get_cert(csr, template, encoding)
    finally:
        ca.close()


def get_existing_cert(
    server: str, req_id: int | str, username: str, password: str, encoding: str = "b64", **kwargs: Any
) -> bytes:
    """Deprecated module-level form of :meth:`Certsrv.get_existing_cert`."""
    _deprecated("get_existing_cert")
    ca = Certsrv(server, username, password, **kwargs)
    try:
        return ca.get_existing_cert(req_id, encoding)
    finally:
        ca.close()


def get_ca_cert(server: str, username: str, password: str, encoding: str = "b64", **kwargs: Any) -> bytes:
    """Deprecated module-level form of :meth:`Certsrv.get_ca_cert`."""
    _deprecated("get_ca_cert")
    ca = Certsrv(server, username, password, **kwargs)
    try:
        return ca.get_ca_cert(encoding)
    finally:
        ca.close()


def get_chain(server: str, username: str, password: str, encoding: str = "bin", **kwargs: Any) -> bytes:
    """Deprecated module-level form of :meth:`Certsrv.get_chain`."""
    _deprecated("get_chain")
    ca = Certsrv(server, username, password, **kwargs)
    try:
        return ca.get_chain(encoding)
    finally:
        ca.close()


def check_credentials(server: str, username: str, password: str, **kwargs: Any) -> bool:
    """Deprecated module-level form of :meth:`Certsrv.check_credentials`."""
    _deprecated("check_credentials")
    ca = Certsrv(server, username, password, **kwargs)
    try:
        return ca.check_credentials()
    finally:
        ca.close()
