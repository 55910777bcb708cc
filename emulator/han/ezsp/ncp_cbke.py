"""The hub's CBKE on the NCP: the responder's cryptography through an NCP's CBKE library.

What a host does with a Silicon Labs NCP whose image has the CBKE library and preinstalled
suite-2 data (the MFG_CBKE_283K1_DATA token): the Initiate Key Establishment Response carries the
certificate ``getCertificate283k1`` (0xEC) returns; an Ephemeral Data Request is answered after
``generateCbkeKeys283k1`` (0xE8, callback ``generateCbkeKeysHandler283k1`` 0xE9: the NCP's
ephemeral key) and ``calculateSmacs283k1`` (0xEA with amInitiator false, the partner's certificate
and ephemeral key; callback ``calculateSmacsHandler283k1`` 0xEB: both SMACs); after the partner's
MACU matched, ``clearTemporaryDataMaybeStoreLinkKey283k1`` (0xEE, storeLinkKey true) keeps the new
key in the NCP's key table, and only then the Confirm Key Data Response goes out, so the device's
first APS-encrypted frame finds the key in place. The host never sees the private key nor the link key.

:meth:`NcpCbkeLibrary.probe` finds out whether the NCP has the library (LIBRARY_NOT_PRESENT or an
unknown command: no); without it the host computes CBKE itself (docs/cbke.md).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import bellows.types as t

from emulator.han.security.cbke import CbkeIdentity
from emulator.han.security.certificates import CertificateError, CryptoSuite, ImplicitCertificate

_LOGGER = logging.getLogger(__name__)

NCP_CBKE_TIMEOUT_S = 10.0
"""How long a CBKE command and its callback may take on the NCP (well inside the 10 s margin of
the partner's Key Establishment timeouts)."""

SmacsDone = Callable[[tuple[bytes, bytes, bytes] | None, str], None]
"""``(ephemeral key, MACU, MACV)`` or None and why."""
StoreDone = Callable[[bool, str], None]


class NcpCbkeError(Exception):
    """A CBKE command the NCP refused or did not answer."""


class NcpCbkeLibrary:
    """Suite 2 (sect283k1, what GB uses) on one NCP; ``certificate`` is what getCertificate283k1 gave."""

    suite = CryptoSuite.SUITE_2

    def __init__(self, ezsp: Callable[[], Any], certificate: ImplicitCertificate) -> None:
        """``ezsp`` returns bellows' current EZSP object (a new one after each reconnection)."""
        self._ezsp = ezsp
        self.certificate = certificate
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls: list[str] = []
        """The CBKE commands sent, in order (what a bench log shows)."""

    @property
    def ezsp(self) -> Any:
        return self._ezsp()

    @classmethod
    async def probe(cls, ezsp: Callable[[], Any]) -> "NcpCbkeLibrary | None":
        """The library when the NCP answers getCertificate283k1 with a suite-2 certificate."""
        try:
            status, certificate = await asyncio.wait_for(ezsp().getCertificate283k1(), NCP_CBKE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - an image without the command: the host computes
            _LOGGER.info("NCP has no CBKE library (getCertificate283k1: %r): CBKE on the host", exc)
            return None
        if status != t.EmberStatus.SUCCESS:
            _LOGGER.info("NCP has no CBKE data (getCertificate283k1: %s): CBKE on the host", status)
            return None
        try:
            cert = ImplicitCertificate.decode(bytes(certificate), CryptoSuite.SUITE_2)
        except CertificateError as exc:
            _LOGGER.warning("NCP's CBKE certificate is unreadable (%s): CBKE on the host", exc)
            return None
        _LOGGER.info("NCP has CBKE suite 2: issuer %s, subject %016X", cert.issuer.hex().upper(), cert.subject)
        library = cls(ezsp, cert)
        library.calls.append("getCertificate283k1")
        return library

    def identity(self) -> CbkeIdentity:
        """The certificate as a Key Establishment responder needs it (``external_smacs``): the
        private key and the CA's public key stay on the NCP, so they are left empty here."""
        return CbkeIdentity(self.certificate, 0, (0, 0))

    # -- callback style, for the Trust Centre ---------------------------------------------------
    def compute_smacs(self, partner_certificate: bytes, partner_ephemeral: bytes, done: SmacsDone) -> None:
        self._spawn(self._compute(partner_certificate, partner_ephemeral, done))

    def store_link_key(self, done: StoreDone) -> None:
        self._spawn(self._store(done))

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _compute(self, partner_certificate: bytes, partner_ephemeral: bytes, done: SmacsDone) -> None:
        try:
            ephemeral = await self.generate_keys()
            macu, macv = await self.calculate_smacs(partner_certificate, partner_ephemeral)
        except NcpCbkeError as exc:
            await self._clear_quietly()
            done(None, str(exc))
            return
        done((ephemeral, macu, macv), "")

    async def _store(self, done: StoreDone) -> None:
        try:
            await self.clear(store_link_key=True)
        except NcpCbkeError as exc:
            done(False, str(exc))
            return
        done(True, "")

    async def _clear_quietly(self) -> None:
        try:
            await self.clear(store_link_key=False)
        except NcpCbkeError as exc:
            _LOGGER.info("NCP: clearing CBKE data failed: %s", exc)

    # -- the EZSP commands ------------------------------------------------------------------------
    async def generate_keys(self) -> bytes:
        """generateCbkeKeys283k1 then its callback: the NCP's compressed ephemeral public key."""
        _, (callback_status, ephemeral) = await self._with_callback(
            "generateCbkeKeys283k1", "generateCbkeKeysHandler283k1")
        if callback_status != t.EmberStatus.SUCCESS:
            raise NcpCbkeError(f"generateCbkeKeysHandler283k1: {callback_status}")
        return bytes(ephemeral)

    async def calculate_smacs(self, partner_certificate: bytes, partner_ephemeral: bytes) -> tuple[bytes, bytes]:
        """calculateSmacs283k1 as the responder, then its callback: (MACU, MACV)."""
        _, (callback_status, initiator_smac, responder_smac) = await self._with_callback(
            "calculateSmacs283k1", "calculateSmacsHandler283k1", amInitiator=False,
            partnerCertificate=t.EmberCertificate283k1Data(partner_certificate),
            partnerEphemeralPublicKey=t.EmberPublicKey283k1Data(partner_ephemeral))
        if callback_status != t.EmberStatus.SUCCESS:
            raise NcpCbkeError(f"calculateSmacsHandler283k1: {callback_status}")
        return bytes(initiator_smac), bytes(responder_smac)

    async def clear(self, *, store_link_key: bool) -> None:
        """clearTemporaryDataMaybeStoreLinkKey283k1: forget the exchange, keep the key if asked."""
        self.calls.append("clearTemporaryDataMaybeStoreLinkKey283k1")
        try:
            (status,) = await asyncio.wait_for(
                self.ezsp.clearTemporaryDataMaybeStoreLinkKey283k1(storeLinkKey=store_link_key), NCP_CBKE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the radio went away or the command is unknown
            raise NcpCbkeError(f"clearTemporaryDataMaybeStoreLinkKey283k1: {exc!r}") from None
        if status != t.EmberStatus.SUCCESS:
            raise NcpCbkeError(f"clearTemporaryDataMaybeStoreLinkKey283k1: {status}")

    async def _with_callback(self, command: str, callback: str, **params: Any) -> tuple[Any, list[Any]]:
        """Send ``command`` and wait for ``callback`` (the NCP answers it after the response)."""
        self.calls.append(command)
        arrived: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()

        def on_callback(name: str, args: list[Any]) -> None:
            if name == callback and not arrived.done():
                arrived.set_result(list(args))

        handle = self.ezsp.add_callback(on_callback)
        try:
            (status,) = await asyncio.wait_for(getattr(self.ezsp, command)(**params), NCP_CBKE_TIMEOUT_S)
            if status != t.EmberStatus.SUCCESS:
                raise NcpCbkeError(f"{command}: {status}")
            return status, await asyncio.wait_for(arrived, NCP_CBKE_TIMEOUT_S)
        except NcpCbkeError:
            raise
        except Exception as exc:  # noqa: BLE001 - timeout, the radio went away
            raise NcpCbkeError(f"{command}: {exc!r}") from None
        finally:
            self.ezsp.remove_callback(handle)
