"""Run catalogue checks on one image file and collect a :class:`CertifyReport`."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from emulator import __version__
from emulator.certify import image_checks
from emulator.certify.catalogue import select
from emulator.certify.image_run import ImageOptions, ImageRun
from emulator.certify.model import Check, CheckResult, Evidence, Group, Verdict
from emulator.ota.image.errors import ImageError
from emulator.ota.image.parse import parse_image

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class CertifyReport:
    """Everything a report shows: what was checked, with what, and each check's result."""

    command: str
    subject: str
    identity: dict[str, Any]
    parameters: dict[str, Any]
    results: tuple[CheckResult, ...]
    sources: dict[str, str]  # check ID -> source
    started: dt.datetime
    elapsed_s: float
    tool_version: str = __version__
    notes: tuple[str, ...] = field(default=())
    device: dict[str, Any] | None = None  # certify device: the device under test's identity

    def count(self, verdict: Verdict) -> int:
        return sum(1 for result in self.results if result.verdict is verdict)

    @property
    def failed(self) -> bool:
        return any(result.verdict is Verdict.FAIL for result in self.results)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def image_identity(run: ImageRun) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "file": run.source,
        "file_length": len(run.data),
        "file_sha256": hashlib.sha256(run.data).hexdigest(),
    }
    image = run.image
    if image is None:
        identity["parse_error"] = str(run.error)
        return identity
    header = image.header

    def hexa(value: int | None, width: int) -> str | None:
        return None if value is None else f"0x{value:0{width}X}"

    identity.update({
        "layout": image.layout,
        "identifier_offset": image.identifier_offset,
        "header_version": hexa(header.header_version, 4),
        "header_length": header.header_length,
        "field_control": hexa(header.field_control, 4),
        "manufacturer_code": hexa(header.manufacturer_code, 4),
        "image_type": hexa(header.image_type, 4),
        "file_version": hexa(header.file_version, 8),
        "stack_version": hexa(header.stack_version, 4),
        "header_string": header.header_string,
        "total_image_size": header.total_image_size,
        "min_hardware_version": hexa(header.min_hardware_version, 4),
        "max_hardware_version": hexa(header.max_hardware_version, 4),
    })
    digest = image.manufacturer_image_sha256
    if digest is not None:
        identity["manufacturer_image_sha256"] = digest.hex()
    return identity


def load_run(source: str, data: bytes, options: ImageOptions) -> ImageRun:
    try:
        image = parse_image(data, source=source)
    except ImageError as exc:
        return ImageRun(source, data, None, exc, options)
    return ImageRun(source, data, image, None, options)


def run_image_check(check: Check[Any], run: ImageRun) -> CheckResult:
    if check.run is None:
        return check.not_available()
    if run.image is None:
        assert run.error is not None
        error = run.error
        owner = image_checks.ERROR_OWNER.get(error.field, image_checks.ERROR_DEFAULT_OWNER)
        if owner == check.check_id:
            return CheckResult(check.check_id, check.title, Verdict.FAIL,
                               (Evidence(error.problem, field=error.field, offset=error.offset),))
        return CheckResult(check.check_id, check.title, Verdict.NOT_APPLICABLE,
                           (Evidence(f"the file does not parse ({owner} fails): nothing to check"),))
    return check.run(run).result(check)


def certify_image(source: str, data: bytes, options: ImageOptions, *, only: str | None = None) -> CertifyReport:
    """Run the A checks (or ``only`` those named) on one file. ``ValueError`` for a bad ``only``."""
    checks = select(only, group=Group.IMAGE)
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.perf_counter()
    run = load_run(source, data, options)
    results = tuple(run_image_check(check, run) for check in checks)
    elapsed = time.perf_counter() - clock
    for result in results:
        _LOGGER.info("%s %s: %s", result.check_id, result.verdict.value, result.summary)
    return CertifyReport(
        command="certify image", subject=source, identity=image_identity(run),
        parameters=options.as_dict(), results=results,
        sources={check.check_id: check.source for check in checks},
        started=started, elapsed_s=elapsed,
    )
