"""CAPF session state machines in h11's style, one per role: bytes in, events out, messages in, bytes out.

Neither machine does I/O. Feed received bytes with ``receive_data`` (``b""`` means the peer closed), pull
events with ``next_event`` until it returns :data:`NEED_DATA`, and turn the messages you want to send into
bytes with ``send`` (or the named helpers). A message the peer may not send now raises
:class:`~capf_common.RemoteProtocolError` (malformed bytes: its subclass :class:`~capf_common.FramingError`);
a message this side may not send now raises :class:`~capf_common.LocalProtocolError`. After a protocol error
the machine is in :attr:`SessionState.ERROR` and refuses to go on.

Order of a session (CAPF speaks first; one session per TLS connection)::

    CAPF                                  phone
    AUTH_REQUEST  ───────────────────────►
                  ◄─────────────────────── AUTH_RESPONSE
    one of, any number of times:
      KEY_GENERATE_REQUEST ──────────────►
                  ◄─────────────────────── [REQUEST_IN_PROGRESS ...] KEY_GENERATE_RESPONSE
      SIGN_CERTIFICATE_REQUEST ──────────►
                  ◄─────────────────────── [REQUEST_IN_PROGRESS ...] SIGN_CERTIFICATE_RESPONSE
      STORE_CERTIFICATE_REQUEST ─────────►  (only after a public key or CSR arrived)
                  ◄─────────────────────── STORE_CERTIFICATE_RESPONSE
      FETCH_CERTIFICATE_REQUEST / DELETE_CERTIFICATE_REQUEST ──►
                  ◄─────────────────────── FETCH_ / DELETE_CERTIFICATE_RESPONSE
    END_SESSION   ───────────────────────►  (CAPF may end the session at any point after AUTH_REQUEST)
"""

from __future__ import annotations

import enum
import logging
import secrets
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from capf_common._codec import MessageDecoder
from capf_common._elements import CertificateElement
from capf_common._enums import (
    PROTOCOL_VERSION,
    AuthType,
    CertificateType,
    Command,
    Curve,
    HashId,
    KeyType,
    Reason,
    enum_name,
)
from capf_common._errors import CapfProtocolError, LocalProtocolError, RemoteProtocolError
from capf_common._messages import (
    AuthRequest,
    AuthResponse,
    CapfMessage,
    DeleteCertificateRequest,
    DeleteCertificateResponse,
    EndSession,
    FetchCertificateRequest,
    FetchCertificateResponse,
    KeyGenerateRequest,
    KeyGenerateResponse,
    RequestInProgress,
    SignCertificateRequest,
    SignCertificateResponse,
    StoreCertificateRequest,
    StoreCertificateResponse,
    parse_message,
)
from capf_common._signing import SigningKey, make_auth_signatures, make_sudi_data

__all__ = [
    "NEED_DATA",
    "CapfServerConnection",
    "ConnectionClosed",
    "Event",
    "NeedData",
    "PhoneConnection",
    "SessionState",
]

_log = logging.getLogger(__name__)


class SessionState(enum.Enum):
    """Where a connection stands."""

    SEND = "send"
    """This side must send next."""
    RECEIVE = "receive"
    """Waiting for the peer."""
    CLOSED = "closed"
    """END_SESSION sent or received, or the peer closed the stream."""
    ERROR = "error"
    """A protocol error happened; the connection cannot go on."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """Event: the peer closed the stream (``receive_data(b"")``) between messages."""


class NeedData:
    """Type of :data:`NEED_DATA`, returned by ``next_event`` when more bytes are needed."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = NeedData()
"""``next_event`` returns this when it needs more bytes."""

Event = CapfMessage | ConnectionClosed
"""What ``next_event`` returns besides :data:`NEED_DATA`: a typed message, or :class:`ConnectionClosed`."""

_OPERATIONS = frozenset(
    {
        Command.KEY_GENERATE_REQUEST,
        Command.SIGN_CERTIFICATE_REQUEST,
        Command.FETCH_CERTIFICATE_REQUEST,
        Command.DELETE_CERTIFICATE_REQUEST,
    }
)
_ANSWERS: dict[Command, frozenset[Command]] = {
    Command.KEY_GENERATE_REQUEST: frozenset({Command.REQUEST_IN_PROGRESS, Command.KEY_GENERATE_RESPONSE}),
    Command.SIGN_CERTIFICATE_REQUEST: frozenset({Command.REQUEST_IN_PROGRESS, Command.SIGN_CERTIFICATE_RESPONSE}),
    Command.FETCH_CERTIFICATE_REQUEST: frozenset({Command.FETCH_CERTIFICATE_RESPONSE}),
    Command.DELETE_CERTIFICATE_REQUEST: frozenset({Command.DELETE_CERTIFICATE_RESPONSE}),
    Command.STORE_CERTIFICATE_REQUEST: frozenset({Command.STORE_CERTIFICATE_RESPONSE}),
    Command.AUTH_REQUEST: frozenset({Command.AUTH_RESPONSE}),
}


def _name(command: int) -> str:
    return enum_name(Command, command)


class _Connection:
    """The machinery both roles share: reassembly, the turn, the allowed commands, the error state."""

    _role = ""
    _ends_anytime = False

    def __init__(self, session_id: int | None) -> None:
        self._decoder = MessageDecoder(expected_session_id=session_id)
        self._session_id = session_id
        self._state = SessionState.SEND
        self._may_send: frozenset[Command] = frozenset()
        self._expect: frozenset[Command] = frozenset()
        self._eof = False
        self._key_exchanged = False
        self._started = False

    @property
    def session_id(self) -> int | None:
        """The session id (the phone learns it from AUTH_REQUEST; ``None`` until then)."""
        return self._session_id

    @property
    def state(self) -> SessionState:
        """The current :class:`SessionState`."""
        return self._state

    @property
    def may_send(self) -> frozenset[Command]:
        """The commands this side may send now (CAPF may always end an open session)."""
        if self._state in (SessionState.CLOSED, SessionState.ERROR):
            return frozenset()
        if self._ends_anytime and self._started:
            return self._may_send | {Command.END_SESSION}
        return self._may_send

    def receive_data(self, data: bytes) -> None:
        """Add bytes received from the peer; ``b""`` signals that the peer closed the stream.

        Raises:
            LocalProtocolError: Bytes after the end of the stream was signalled.
        """
        if self._eof and data:
            raise LocalProtocolError("bytes received after the end of the stream", hint="feed b'' only at the end")
        if not data:
            self._eof = True
        self._decoder.feed(data)

    def next_event(self) -> Event | NeedData:
        """Return the next event, or :data:`NEED_DATA` when the buffered bytes hold no whole message.

        Raises:
            RemoteProtocolError: The peer sent a message it may not send now, or one missing a required element.
            FramingError: The bytes are not CAPF messages, or a message is cut off at the end of the stream.
            SessionMismatchError: A message carries another session id.
        """
        if self._state is SessionState.ERROR:
            raise RemoteProtocolError(
                f"the {self._role} connection already failed", hint="close the connection and start a new session"
            )
        try:
            message = self._decoder.next_message()
            if message is None:
                if not self._eof:
                    return NEED_DATA
                self._decoder.close()
                self._state = SessionState.CLOSED
                return ConnectionClosed()
            expected_now = self._expect if self._state is SessionState.RECEIVE else frozenset()
            if message.command not in expected_now | self._accepted_anytime():
                expected = ", ".join(sorted(_name(c) for c in self._expect)) or "nothing"
                raise RemoteProtocolError(
                    f"{self._role} received {_name(message.command)} while expecting {expected}",
                    hint="the peer does not follow the CAPF message order; check its version and logs",
                )
            event = parse_message(message)
            self._received(event, message.session_id)
        except CapfProtocolError:
            self._state = SessionState.ERROR
            raise
        _log.debug("%s received %s (session %#010x)", self._role, _name(message.command), message.session_id)
        return event

    def send(self, message: CapfMessage) -> bytes:
        """Return the bytes of ``message`` and move the state on.

        Args:
            message: The typed message to send.

        Raises:
            LocalProtocolError: This side may not send the message now, it lacks a required element, or a value
                does not fit its field.
        """
        if message.command not in self.may_send:
            allowed = ", ".join(sorted(_name(c) for c in self.may_send)) or "nothing"
            raise LocalProtocolError(
                f"{self._role} may not send {_name(message.command)} now (state {self._state.value}; "
                f"allowed: {allowed})",
                hint="follow the CAPF message order: wait for the peer's answer before the next request",
            )
        self._check_send(message)
        assert self._session_id is not None  # the phone learns it before it may send
        data = message.encode(self._session_id)
        self._started = True
        self._sent(message)
        _log.debug("%s sent %s (session %#010x)", self._role, _name(message.command), self._session_id)
        return data

    def _check_send(self, message: CapfMessage) -> None:
        """Refuse a message that lacks what its role requires."""

    def _accepted_anytime(self) -> frozenset[Command]:
        """Commands the peer may send whatever the turn (CAPF's END_SESSION, once the session started)."""
        return frozenset()

    def _sent(self, message: CapfMessage) -> None:
        raise NotImplementedError

    def _received(self, message: CapfMessage, session_id: int) -> None:
        raise NotImplementedError

    def _wait_for(self, commands: frozenset[Command]) -> None:
        self._state = SessionState.RECEIVE
        self._expect = commands
        self._may_send = frozenset()

    def _turn(self, commands: frozenset[Command]) -> None:
        self._state = SessionState.SEND
        self._may_send = commands
        self._expect = frozenset()


def _remote(cause: str, hint: str) -> RemoteProtocolError:
    return RemoteProtocolError(cause, hint=hint)


def _local(cause: str, hint: str) -> LocalProtocolError:
    return LocalProtocolError(cause, hint=hint)


class CapfServerConnection(_Connection):
    """The CAPF (server) side of one session.

    Start with :meth:`start` (AUTH_REQUEST), read the phone's :class:`AuthResponse`, decide (check it with
    :func:`~capf_common.verify_auth_response`, look up the device and its pending operation), then run the
    operation: :meth:`request_csr` (Online CA: the phone returns a PKCS#10) or :meth:`request_public_key`
    (classic: the phone returns a public key), then :meth:`store_certificate`; or :meth:`fetch_certificate`,
    :meth:`delete_certificate`; and finish with :meth:`end_session`.

    Args:
        session_id: The session id; random when ``None`` (capfd counts per connection; any u32 works).

    Raises:
        LocalProtocolError: ``session_id`` does not fit 32 bits.
    """

    _role = "CAPF"
    _ends_anytime = True

    def __init__(self, session_id: int | None = None) -> None:
        if session_id is None:
            session_id = secrets.randbits(32)
        if not 0 <= session_id <= 0xFFFFFFFF:
            raise _local(f"session id {session_id} does not fit 32 bits", "use a session id from 0 to 2**32-1")
        super().__init__(session_id)
        self._may_send = frozenset({Command.AUTH_REQUEST})
        self.auth_response: AuthResponse | None = None
        """The phone's AUTH_RESPONSE once received."""

    @property
    def device_name(self) -> str | None:
        """The device name from the phone's AUTH_RESPONSE, ``None`` before it."""
        return None if self.auth_response is None else self.auth_response.device_name

    def _ready(self) -> None:
        store = {Command.STORE_CERTIFICATE_REQUEST} if self._key_exchanged else set()
        self._turn(frozenset({*_OPERATIONS, *store, Command.END_SESSION}))

    def _check_send(self, message: CapfMessage) -> None:
        if isinstance(message, StoreCertificateRequest) and message.certificate is None:
            raise _local("STORE_CERTIFICATE_REQUEST without a certificate", "pass the certificate to store")

    def _sent(self, message: CapfMessage) -> None:
        if message.command == Command.END_SESSION:
            self._state = SessionState.CLOSED
            self._may_send = self._expect = frozenset()
        else:
            self._wait_for(_ANSWERS[message.command])

    def _received(self, message: CapfMessage, session_id: int) -> None:
        if isinstance(message, RequestInProgress):
            return
        if isinstance(message, AuthResponse):
            if not message.device_name:
                raise _remote("AUTH_RESPONSE without a DEVICE_NAME", "the phone must name itself (SEP + MAC)")
            if message.version not in (2, 3):
                _log.warning("phone %s speaks CAPF version %s (expected 2 or 3)", message.device_name, message.version)
            self.auth_response = message
        elif isinstance(message, KeyGenerateResponse | SignCertificateResponse):
            payload = message.public_key if isinstance(message, KeyGenerateResponse) else message.csr
            if payload is None and message.reason is None:
                raise _remote(
                    f"{_name(message.command)} carries neither its result nor a REASON",
                    "the phone must send the key (or CSR), or a REASON on failure",
                )
            self._key_exchanged = self._key_exchanged or payload is not None
        self._ready()

    def start(self, auth_type: AuthType | int | None = AuthType.NONE, *, version: int = PROTOCOL_VERSION) -> bytes:
        """Return AUTH_REQUEST, the session's first message.

        Args:
            auth_type: AUTH_TYPE to announce (capfd sends NONE; ``None`` omits the element, like a real CUCM).
            version: VERSION to announce.

        Raises:
            LocalProtocolError: The session already started.
        """
        return self.send(AuthRequest(version=version, auth_type=auth_type))

    def request_public_key(
        self, key_type: KeyType = KeyType.RSA, *, key_size: int = 2048, curve: Curve = Curve.SECP256R1
    ) -> bytes:
        """Return KEY_GENERATE_REQUEST: the phone generates a key pair and answers with its public key.

        Args:
            key_type: RSA or EC.
            key_size: RSA modulus bits (512..4096 in CUCM).
            curve: The EC curve.

        Raises:
            LocalProtocolError: Not allowed now.
        """
        if key_type == KeyType.EC:
            return self.send(KeyGenerateRequest(key_type=key_type, curve=curve))
        return self.send(KeyGenerateRequest(key_type=key_type, key_size=key_size))

    def request_csr(
        self,
        key_type: KeyType = KeyType.RSA,
        *,
        key_size: int = 2048,
        curve: Curve = Curve.SECP256R1,
        digest: HashId = HashId.SHA256,
    ) -> bytes:
        """Return SIGN_CERTIFICATE_REQUEST: the phone generates a key pair and answers with a PKCS#10.

        This exchange's layout is this project's assumption (no public record); see the protocol page.

        Args:
            key_type: RSA or EC (Online CA supports RSA only).
            key_size: RSA modulus bits.
            curve: The EC curve.
            digest: The hash the phone signs the CSR with.

        Raises:
            LocalProtocolError: Not allowed now.
        """
        if key_type == KeyType.EC:
            return self.send(SignCertificateRequest(key_type=key_type, curve=curve, digest=digest))
        return self.send(SignCertificateRequest(key_type=key_type, key_size=key_size, digest=digest))

    def store_certificate(
        self, certificate: x509.Certificate | bytes, certificate_type: CertificateType = CertificateType.LSC
    ) -> bytes:
        """Return STORE_CERTIFICATE_REQUEST carrying the issued certificate (after a key or CSR arrived).

        Args:
            certificate: The certificate (object or DER).
            certificate_type: LSC.

        Raises:
            LocalProtocolError: No public key or CSR arrived in this session, or not allowed now.
        """
        der = certificate.public_bytes(Encoding.DER) if isinstance(certificate, x509.Certificate) else certificate
        return self.send(
            StoreCertificateRequest(
                certificate_type=certificate_type, certificate=CertificateElement(der, certificate_type)
            )
        )

    def fetch_certificate(self) -> bytes:
        """Return FETCH_CERTIFICATE_REQUEST (CUCM "Troubleshoot").

        Raises:
            LocalProtocolError: Not allowed now.
        """
        return self.send(FetchCertificateRequest())

    def delete_certificate(self) -> bytes:
        """Return DELETE_CERTIFICATE_REQUEST.

        Raises:
            LocalProtocolError: Not allowed now.
        """
        return self.send(DeleteCertificateRequest())

    def end_session(self, reason: Reason | int = Reason.UPDATE_CERTIFICATE) -> bytes:
        """Return END_SESSION; allowed at any point after AUTH_REQUEST until the session closed.

        Args:
            reason: UPDATE_CERTIFICATE after success, NO_ACTION when nothing is scheduled, UNKNOWN_DEVICE,
                INVALID_ELEMENT for a refusal or failure.

        Raises:
            LocalProtocolError: The session already ended.
        """
        return self.send(EndSession(reason=reason))


class PhoneConnection(_Connection):
    """The phone (client) side of one session: answers what CAPF asks.

    Wait for :class:`AuthRequest`, answer with :meth:`authenticate`; then answer each request:
    :class:`SignCertificateRequest` with :meth:`send_csr`, :class:`KeyGenerateRequest` with
    :meth:`send_public_key` (optionally :meth:`request_in_progress` first), :class:`StoreCertificateRequest`,
    :class:`DeleteCertificateRequest` with :meth:`acknowledge`, :class:`FetchCertificateRequest` with
    :meth:`send_certificates`, anything with :meth:`fail`, until :class:`EndSession` arrives.
    """

    _role = "phone"

    def __init__(self) -> None:
        super().__init__(None)
        self._wait_for(frozenset({Command.AUTH_REQUEST}))
        self.auth_request: AuthRequest | None = None
        """CAPF's AUTH_REQUEST once received."""
        self.pending_request: CapfMessage | None = None
        """The request the phone must answer now, ``None`` when it is CAPF's turn."""
        self.end_reason: Reason | int | None = None
        """The REASON of CAPF's END_SESSION once received."""

    def _accepted_anytime(self) -> frozenset[Command]:
        if self.auth_request is None or self._state in (SessionState.CLOSED, SessionState.ERROR):
            return frozenset()
        return frozenset({Command.END_SESSION})

    def _server_turn(self) -> None:
        store = {Command.STORE_CERTIFICATE_REQUEST} if self._key_exchanged else set()
        self._wait_for(frozenset({*_OPERATIONS, *store, Command.END_SESSION}))
        self.pending_request = None

    def _received(self, message: CapfMessage, session_id: int) -> None:
        if isinstance(message, AuthRequest):
            self.auth_request = message
            self._session_id = self._decoder.expected_session_id = session_id
        elif isinstance(message, EndSession):
            self.end_reason = message.reason
            self.pending_request = None
            self._state = SessionState.CLOSED
            self._expect = frozenset()
            return
        elif isinstance(message, StoreCertificateRequest) and message.certificate is None:
            raise _remote("STORE_CERTIFICATE_REQUEST without a CERTIFICATE", "CAPF must send the certificate to store")
        self.pending_request = message
        self._turn(_ANSWERS[message.command])

    def _check_send(self, message: CapfMessage) -> None:
        if isinstance(message, AuthResponse) and not message.device_name:
            raise _local("AUTH_RESPONSE without a device name", "pass the phone's device name (SEP + MAC)")

    def _sent(self, message: CapfMessage) -> None:
        if isinstance(message, RequestInProgress):
            return
        if isinstance(message, KeyGenerateResponse | SignCertificateResponse):
            payload = message.public_key if isinstance(message, KeyGenerateResponse) else message.csr
            self._key_exchanged = self._key_exchanged or payload is not None
        self._server_turn()

    def authenticate(
        self,
        device_name: str,
        *,
        password: str = "",
        certificate: x509.Certificate | None = None,
        private_key: SigningKey | None = None,
        certificate_type: CertificateType = CertificateType.LSC,
        sudi_certificate: x509.Certificate | None = None,
        sudi_key: SigningKey | None = None,
        version: int = PROTOCOL_VERSION,
    ) -> bytes:
        """Return AUTH_RESPONSE with the credentials given (the phone always sends PASSWORD, empty if none).

        Args:
            device_name: The phone's device name, e.g. ``SEP001122334455``.
            password: The authentication string ("By Authentication String"); empty for the null string.
            certificate: The LSC or MIC to authenticate with ("By Existing Certificate"); signed with
                ``private_key`` (SHA-1 and SHA-512, RSA over the bare hash).
            private_key: The certificate's key.
            certificate_type: LSC or MIC, as put in the nested CERTIFICATE.
            sudi_certificate: A SUDI certificate to add as SUDI_DATA (signed over the session id).
            sudi_key: The SUDI certificate's key.
            version: VERSION to answer with.

        Raises:
            LocalProtocolError: Not allowed now, or a certificate without its key.
            CapfSignatureError: A key cannot sign.
        """
        signed_data = sha2 = sudi = element = None
        if certificate is not None:
            if private_key is None:
                raise _local("a certificate to authenticate with needs its private key", "pass private_key")
            signed_data, sha2 = make_auth_signatures(device_name, certificate, private_key)
            element = CertificateElement(certificate.public_bytes(Encoding.DER), certificate_type)
        if sudi_certificate is not None:
            if sudi_key is None or self._session_id is None:
                raise _local("SUDI data needs the SUDI key and a started session", "pass sudi_key after AUTH_REQUEST")
            sudi = make_sudi_data(self._session_id, sudi_certificate, sudi_key)
        return self.send(
            AuthResponse(
                reason=Reason.UPDATE_CERTIFICATE,
                version=version,
                device_name=device_name,
                password=password,
                certificate=element,
                signed_data=signed_data,
                sha2_signed_data=sha2,
                sudi_data=sudi,
            )
        )

    def request_in_progress(self) -> bytes:
        """Return REQUEST_IN_PROGRESS (while generating a key for KEY_GENERATE / SIGN_CERTIFICATE requests).

        Raises:
            LocalProtocolError: Not allowed now.
        """
        return self.send(RequestInProgress())

    def send_public_key(self, public_key: bytes | PublicKeyTypes) -> bytes:
        """Return KEY_GENERATE_RESPONSE with the new public key.

        Args:
            public_key: DER SubjectPublicKeyInfo, or a ``cryptography`` public key.

        Raises:
            LocalProtocolError: Not allowed now.
        """
        if not isinstance(public_key, bytes):
            public_key = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return self.send(KeyGenerateResponse(reason=Reason.UPDATE_CERTIFICATE, public_key=public_key))

    def send_csr(self, csr: x509.CertificateSigningRequest | bytes) -> bytes:
        """Return SIGN_CERTIFICATE_RESPONSE with the PKCS#10 (DER).

        Args:
            csr: The certificate signing request, signed with the new key.

        Raises:
            LocalProtocolError: Not allowed now.
        """
        der = csr.public_bytes(Encoding.DER) if isinstance(csr, x509.CertificateSigningRequest) else csr
        return self.send(SignCertificateResponse(reason=Reason.UPDATE_CERTIFICATE, csr=der))

    def acknowledge(self) -> bytes:
        """Return the success answer to the pending STORE_ or DELETE_CERTIFICATE_REQUEST.

        Raises:
            LocalProtocolError: No store or delete request is pending.
        """
        return self.send(self._answer(Reason.UPDATE_CERTIFICATE))

    def send_certificates(self, *certificates: CertificateElement) -> bytes:
        """Return FETCH_CERTIFICATE_RESPONSE with the phone's certificates (none is allowed).

        Raises:
            LocalProtocolError: No fetch request is pending.
        """
        return self.send(FetchCertificateResponse(reason=Reason.UPDATE_CERTIFICATE, certificates=certificates))

    def fail(self, reason: Reason | int = Reason.INVALID_ELEMENT) -> bytes:
        """Return the failure answer (REASON only) to the pending request.

        Args:
            reason: The REASON to report.

        Raises:
            LocalProtocolError: No request is pending.
        """
        return self.send(self._answer(reason))

    def _answer(self, reason: Reason | int) -> CapfMessage:
        answers: dict[type[CapfMessage], CapfMessage] = {
            KeyGenerateRequest: KeyGenerateResponse(reason=reason),
            SignCertificateRequest: SignCertificateResponse(reason=reason),
            StoreCertificateRequest: StoreCertificateResponse(reason=reason),
            DeleteCertificateRequest: DeleteCertificateResponse(reason=reason),
            FetchCertificateRequest: FetchCertificateResponse(reason=reason),
        }
        answer = None if self.pending_request is None else answers.get(type(self.pending_request))
        if answer is None:
            raise _local("no CAPF request is pending that this answer fits", hint="wait for CAPF's next request")
        return answer
