"""DCC's DUIS V5.4 XSD (from shared/vectors/duis/xsd) as an lxml validator, and DCC's own
duis-sign-wrap validator (Java, V5.1 + XML-DSig) for the emulator's messages.

shared/ lies beside the repository (a CI clone gets a copy there); /work/shared otherwise. The
schema imports ``MMC Schema V5.4.xsd`` and ``xmldsig-core-schema.xsd`` by relative name; a resolver
serves those two from the same folder (a name with spaces is otherwise read as a URI), and nothing
else: the validator never reaches the network.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

from lxml import etree


def shared_dir() -> Path:
    beside = Path(__file__).resolve().parents[2].parent / "shared"
    return beside if (beside / "vectors").is_dir() else Path("/work/shared")


XSD_DIR = shared_dir() / "vectors" / "duis" / "xsd"
SAMPLES_DIR = shared_dir() / "vectors" / "duis" / "dcc-boxed-samples"
NPM_DIR = Path(__file__).resolve().parent / "npm"
SIGN_WRAP_JAR = NPM_DIR / "node_modules" / "@smartdcc" / "duis-sign-wrap" / "dist" / "tool.jar"
ZAZ1_KEYSTORE = NPM_DIR / "node_modules" / "@smartdcc" / "dccboxed-keystore" / "keystore.json"


_XS = "{http://www.w3.org/2001/XMLSchema}"


@functools.lru_cache(maxsize=1)
def duis_schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    document = etree.parse(str(XSD_DIR / "DUIS Schema V5.4.xsd"), parser)
    for imported in document.getroot().iter(f"{_XS}import"):
        # A relative name with spaces is read as a URI by libxml2: point it at the file itself.
        location = XSD_DIR / imported.get("schemaLocation", "")
        imported.set("schemaLocation", location.as_uri())
    return etree.XMLSchema(document)


def schema_errors(message: bytes) -> list[str]:
    """Every V5.4 violation of ``message`` (one line each); empty when it validates."""
    schema = duis_schema()
    root = etree.fromstring(message, etree.XMLParser(resolve_entities=False, no_network=True))
    if schema.validate(root):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]  # type: ignore[attr-defined]


def assert_valid(message: bytes, what: str = "message") -> None:
    errors = schema_errors(message)
    assert not errors, f"{what} is not valid DUIS V5.4:\n" + "\n".join(errors) + "\n" + message.decode()[:3000]


def sign_wrap_available() -> str | None:
    """None when DCC's validator can run here; else why not (CI installs both, see .ci/run)."""
    if shutil.which("java") is None:
        return "no java on PATH (.ci/run installs default-jre-headless)"
    if not SIGN_WRAP_JAR.is_file():
        return f"{SIGN_WRAP_JAR} missing: run `npm ci --prefix tests/dcc/npm`"
    return None


def sign_wrap_validate(message: bytes) -> tuple[int, str]:
    """Run DCC Boxed's Validate on ``message``: (exit code, its log). 0 = XSD V5.1 and signature
    passed (an unsigned message passes on the XSD alone), 10 = validation failed."""
    done = subprocess.run(
        ["java", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-cp", str(SIGN_WRAP_JAR),
         "uk.co.smartdcc.boxed.xmldsig.Validate", "-"],
        input=message, capture_output=True, timeout=120, check=False,
    )
    return done.returncode, done.stderr.decode("utf-8", "replace")


def require_tool(reason: str) -> None:
    """Skip on a developer's machine without the tool; fail in CI, where .ci/run installs it."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"independent check cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)
