"""Benchmark: one OTA block exchange through our codec and through zigpy's.

An exchange is what a Comms Hub and a device do per block: encode and decode an Image Block
Request, then encode and decode an Image Block Response carrying 48 bytes of image data. zigpy
does it the way it handles frames on the air: build a ``ZCLHeader`` and the command schema,
serialise both, then ``ZCLHeader.deserialize`` and the schema's ``deserialize``.

Usage: ``python benchmarks/codec.py [--json] [--seconds S]``. Figures are exchanges per second;
``ratio`` is ours / zigpy's, measured in the same run so that machine load affects both.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.ota.codec import decode, encode  # noqa: E402
from emulator.ota.frames import ImageBlockRequest, ImageBlockResponse  # noqa: E402

MANUFACTURER = 0x1234
IMAGE_TYPE = 0x0084
FILE_VERSION = 0x01020304
OFFSET = 4800
BLOCK = bytes(range(48))


def ours_exchange() -> Callable[[], None]:
    request = ImageBlockRequest(0, MANUFACTURER, IMAGE_TYPE, FILE_VERSION, OFFSET, len(BLOCK))
    response = ImageBlockResponse(0, MANUFACTURER, IMAGE_TYPE, FILE_VERSION, OFFSET, BLOCK)

    def exchange() -> None:
        decode(encode(request, tsn=7))
        decode(encode(response, tsn=7))

    return exchange


def zigpy_exchange() -> Callable[[], None]:
    import zigpy.zcl.foundation as foundation
    from zigpy.zcl.clusters.general import Ota

    request_schema = Ota.ServerCommandDefs.image_block.schema
    response_schema = Ota.ClientCommandDefs.image_block_response.schema
    to_server = foundation.Direction.Client_to_Server
    to_client = foundation.Direction.Server_to_Client
    block_request = Ota.ServerCommandDefs.image_block.id
    block_response = Ota.ClientCommandDefs.image_block_response.id

    def exchange() -> None:
        header = foundation.ZCLHeader.cluster(tsn=7, command_id=block_request, direction=to_server)
        frame = header.serialize() + request_schema(
            field_control=0,
            manufacturer_code=MANUFACTURER,
            image_type=IMAGE_TYPE,
            file_version=FILE_VERSION,
            file_offset=OFFSET,
            maximum_data_size=len(BLOCK),
        ).serialize()
        _, rest = foundation.ZCLHeader.deserialize(frame)
        request_schema.deserialize(rest)

        header = foundation.ZCLHeader.cluster(tsn=7, command_id=block_response, direction=to_client)
        frame = header.serialize() + response_schema(
            status=foundation.Status.SUCCESS,
            manufacturer_code=MANUFACTURER,
            image_type=IMAGE_TYPE,
            file_version=FILE_VERSION,
            file_offset=OFFSET,
            image_data=BLOCK,
        ).serialize()
        _, rest = foundation.ZCLHeader.deserialize(frame)
        response_schema.deserialize(rest)

    return exchange


def rate(exchange: Callable[[], None], seconds: float) -> float:
    """Exchanges per second: best of several timed batches, after a warm-up."""
    for _ in range(200):
        exchange()
    batch = 1
    while True:  # grow the batch until it takes ~1/10 of the budget
        start = time.perf_counter()
        for _ in range(batch):
            exchange()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 10:
            break
        batch *= 2
    best = batch / elapsed
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(batch):
            exchange()
        best = max(best, batch / (time.perf_counter() - start))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--seconds", type=float, default=1.0, help="time budget per codec")
    args = parser.parse_args(argv)

    ours = rate(ours_exchange(), args.seconds)
    theirs = rate(zigpy_exchange(), args.seconds)
    result = {
        "ours_per_s": round(ours),
        "zigpy_per_s": round(theirs),
        "ratio": round(ours / theirs, 1),
        "ours_us_per_exchange": round(1e6 / ours, 2),
        "zigpy_us_per_exchange": round(1e6 / theirs, 1),
        "block_bytes": len(BLOCK),
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"ours : {result['ours_per_s']:>10,} exchanges/s ({result['ours_us_per_exchange']} us)")
        print(f"zigpy: {result['zigpy_per_s']:>10,} exchanges/s ({result['zigpy_us_per_exchange']} us)")
        print(f"ratio: {result['ratio']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
