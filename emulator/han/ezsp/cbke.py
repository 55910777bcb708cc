"""The CBKE commands of an EZSP NCP whose image has the CBKE library (both Smart Energy suites).

A Silicon Labs NCP built with the CBKE library and preinstalled certificates does the Key
Establishment cryptography for the host: ``getCertificate283k1`` (0xEC) returns its certificate,
``generateCbkeKeys283k1`` (0xE8) makes an ephemeral key and answers in the callback
``generateCbkeKeysHandler283k1`` (0xE9), ``calculateSmacs283k1`` (0xEA; initiator flag, partner
certificate and ephemeral key) answers both SMACs in ``calculateSmacsHandler283k1`` (0xEB), and
``clearTemporaryDataMaybeStoreLinkKey283k1`` (0xEE) forgets the ephemeral data and, if asked,
stores the new key as the partner's APS link key. The suite-1 (sect163k1) commands are 0xA5,
0xA4/0x9E, 0x9F/0xA0 and 0xA1. The emulated dongle answers them with the project's own crypto
(:mod:`emulator.han.security.cbke`) and the identities in :attr:`DongleState.cbke_identities`;
without them it answers LIBRARY_NOT_PRESENT, like an image without the CBKE library.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import bellows.types as t

from emulator.han.security.cbke import CbkeIdentity, EphemeralKey, KeyConfirmation, derive
from emulator.han.security.certificates import CertificateError, CryptoSuite, ImplicitCertificate
from emulator.han.security.curves import InvalidPoint

from .handlers import CommandHandlers, command

_LOGGER = logging.getLogger(__name__)


@dataclass
class CbkeTemporaryData:
    """What the CBKE library holds between generate, calculate and clear (one exchange)."""

    ephemeral: EphemeralKey | None = None
    partner: int | None = None
    confirmation: KeyConfirmation | None = None


class CbkeCommands(CommandHandlers):
    """Mixed into the version handlers: the CBKE library's commands."""

    def _cbke_identity(self, suite: CryptoSuite) -> CbkeIdentity | None:
        return self.dongle.cbke_identities.get(suite.number)

    def _cbke_temporary(self, suite: CryptoSuite) -> CbkeTemporaryData:
        store: dict[int, CbkeTemporaryData] = self.dongle.cbke_temporary
        return store.setdefault(suite.number, CbkeTemporaryData())

    # -- getCertificate ------------------------------------------------------------------------
    def _get_certificate(self, suite: CryptoSuite, data_type: Any) -> dict[str, Any]:
        identity = self._cbke_identity(suite)
        if identity is None:
            return {"status": t.EmberStatus.LIBRARY_NOT_PRESENT, "localCert": data_type(bytes(suite.certificate_length))}
        return {"status": t.EmberStatus.SUCCESS, "localCert": data_type(identity.certificate.encode())}

    @command("getCertificate283k1")
    def get_certificate_283k1(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._get_certificate(CryptoSuite.SUITE_2, t.EmberCertificate283k1Data)

    @command("getCertificate")
    def get_certificate(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._get_certificate(CryptoSuite.SUITE_1, t.EmberCertificateData)

    # -- generateCbkeKeys ------------------------------------------------------------------------
    def _generate(self, suite: CryptoSuite, handler: str, key_type: Any) -> dict[str, Any]:
        identity = self._cbke_identity(suite)
        if identity is None:
            return {"status": t.EmberStatus.LIBRARY_NOT_PRESENT}
        temporary = self._cbke_temporary(suite)
        temporary.ephemeral = EphemeralKey.generate(suite.curve)
        temporary.confirmation = None
        encoded = temporary.ephemeral.encoded
        self.session.defer(lambda: self.session.send_callback(
            handler, {"status": t.EmberStatus.SUCCESS, "ephemeralPublicKey": key_type(encoded)}))
        return {"status": t.EmberStatus.SUCCESS}

    @command("generateCbkeKeys283k1")
    def generate_cbke_keys_283k1(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._generate(CryptoSuite.SUITE_2, "generateCbkeKeysHandler283k1", t.EmberPublicKey283k1Data)

    @command("generateCbkeKeys")
    def generate_cbke_keys(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._generate(CryptoSuite.SUITE_1, "generateCbkeKeysHandler", t.EmberPublicKeyData)

    # -- calculateSmacs --------------------------------------------------------------------------
    def _calculate(self, suite: CryptoSuite, handler: str, params: dict[str, Any]) -> dict[str, Any]:
        identity = self._cbke_identity(suite)
        if identity is None:
            return {"status": t.EmberStatus.LIBRARY_NOT_PRESENT}
        temporary = self._cbke_temporary(suite)
        if temporary.ephemeral is None:
            return {"status": t.EmberStatus.INVALID_CALL}  # generateCbkeKeys first
        zero_smac = t.EmberSmacData(bytes(16))
        try:
            certificate = ImplicitCertificate.decode(bytes(params["partnerCertificate"]), suite)
            confirmation = derive(identity, temporary.ephemeral, certificate,
                                  bytes(params["partnerEphemeralPublicKey"]), am_initiator=bool(params["amInitiator"]))
        except (CertificateError, InvalidPoint, ValueError) as exc:
            _LOGGER.info("NCP: calculateSmacs refused: %s", exc)
            self.session.defer(lambda: self.session.send_callback(
                handler, {"status": t.EmberStatus.ERR_FATAL, "initiatorSmac": zero_smac, "responderSmac": zero_smac}))
            return {"status": t.EmberStatus.SUCCESS}
        temporary.partner = certificate.subject
        temporary.confirmation = confirmation
        self.session.defer(lambda: self.session.send_callback(handler, {
            "status": t.EmberStatus.SUCCESS, "initiatorSmac": t.EmberSmacData(confirmation.macu),
            "responderSmac": t.EmberSmacData(confirmation.macv)}))
        return {"status": t.EmberStatus.SUCCESS}

    @command("calculateSmacs283k1")
    def calculate_smacs_283k1(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._calculate(CryptoSuite.SUITE_2, "calculateSmacsHandler283k1", params)

    @command("calculateSmacs")
    def calculate_smacs(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._calculate(CryptoSuite.SUITE_1, "calculateSmacsHandler", params)

    # -- clearTemporaryDataMaybeStoreLinkKey -----------------------------------------------------
    def _clear(self, suite: CryptoSuite, params: dict[str, Any]) -> dict[str, Any]:
        if self._cbke_identity(suite) is None:
            return {"status": t.EmberStatus.LIBRARY_NOT_PRESENT}
        temporary = self._cbke_temporary(suite)
        status = t.EmberStatus.SUCCESS
        if params["storeLinkKey"]:
            if temporary.confirmation is None or temporary.partner is None:
                status = t.EmberStatus.INVALID_CALL
            else:
                self.dongle.store_link_key(temporary.partner, temporary.confirmation.link_key)
        self.dongle.cbke_temporary.pop(suite.number, None)
        return {"status": status}

    @command("clearTemporaryDataMaybeStoreLinkKey283k1")
    def clear_temporary_data_283k1(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._clear(CryptoSuite.SUITE_2, params)

    @command("clearTemporaryDataMaybeStoreLinkKey")
    def clear_temporary_data(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._clear(CryptoSuite.SUITE_1, params)

    # -- the key table: where a host that computed CBKE itself puts the link key -----------------
    @command("addOrUpdateKeyTableEntry")
    def add_or_update_key_table_entry(self, params: dict[str, Any]) -> dict[str, Any]:
        """EZSP 8-12 (0x66): ``linkKey`` true stores an APS link key for ``address``."""
        if not params["linkKey"]:
            return {"status": t.EmberStatus.INVALID_CALL}  # master keys: not used by SE 1.x
        self.dongle.store_link_key(int.from_bytes(params["address"].serialize(), "little"), bytes(params["keyData"]))
        return {"status": t.EmberStatus.SUCCESS}

    @command("importLinkKey")
    def import_link_key(self, params: dict[str, Any]) -> dict[str, Any]:
        """EZSP 13 and later (0x010E): the security manager's link key for ``address``."""
        self.dongle.store_link_key(int.from_bytes(params["address"].serialize(), "little"), bytes(params["key"]))
        return {"status": t.sl_Status.OK}
