"""What signs the emulator's DUIS output and what its requests are checked against, in one value.

Default: the emulator's TEST ONLY DSP key signs; requests are verified against the ZAZ1 Users'
XML signing certificates; unsigned requests are accepted with a warning (as DCC Boxed does). With
a keystore (DCC's ``keystore.json`` or a PEM directory) its DSP key signs, so DCC's own validator
accepts the signatures, and its certificates are trusted too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .keystore import DSP_EUI, Keystore, KeystoreError, default_keystore, load_keystore
from .signing import DuisSigner, RequestVerifier


@dataclass(frozen=True, slots=True)
class DuisSecurity:
    signer: DuisSigner | None
    verifier: RequestVerifier | None
    require_signatures: bool = False

    @classmethod
    def from_options(cls, keystore: str | os.PathLike[str] | None = None, *,
                     require_signatures: bool = False, dsp_id: int = DSP_EUI) -> "DuisSecurity":
        """Raises :class:`KeystoreError` (naming the file) for a keystore that cannot be used."""
        trusted = default_keystore()
        if keystore is not None:
            loaded = load_keystore(keystore)
            if loaded.signing_entry(dsp_id) is None:
                raise KeystoreError(f"{keystore}: no signing key with its private key for the DSP {dsp_id:016X}")
            trusted = Keystore(loaded.entries + [e for e in trusted.entries if loaded.by_serial(e.serial) is None])
        entry = trusted.signing_entry(dsp_id)
        return cls(DuisSigner(entry) if entry else None, RequestVerifier(trusted), require_signatures)

    def app_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`emulator.dcc.http_api.create_app`."""
        return {"signer": self.signer, "verifier": self.verifier, "require_signatures": self.require_signatures}
