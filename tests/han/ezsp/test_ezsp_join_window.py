"""bellows on the dongle emulator (EZSP 8 and 13): the host's join permissions (transient key,
install-code-only policy, join window) decide who gets on the air, and the NCP reports each join
it decided with trustCenterJoinHandler, as an EmberZNet NCP acting as Trust Centre does."""

from __future__ import annotations

import asyncio

from emulator.han.ezsp.dongle import WELL_KNOWN_TC_LINK_KEY
from emulator.han.ezsp.ncp_trust_centre import JoinOutcome
from emulator.han.security.aes_mmo import link_key_from_install_code
from emulator.han.transport import RadioJoin

from conftest import DEVICE_EUI64, DEVICE_NWK, WAIT, Bench

INSTALL_CODE = bytes.fromhex("83FED3407A939723A5C639B26916D505C3B5")  # the ZigBee spec's example (with CRC)
KEY = link_key_from_install_code(INSTALL_CODE)
OTHER_EUI64 = 0x00DB123456789777


async def _reports(bench: Bench) -> asyncio.Queue[RadioJoin]:
    queue: asyncio.Queue[RadioJoin] = asyncio.Queue()
    bench.transport.set_join_listener(queue.put_nowait)
    return queue


async def test_a_whitelisted_device_joins_with_its_install_code_key(bench: Bench, ezsp_version: int) -> None:
    reports = await _reports(bench)
    mark = len(bench.ncp.commands)
    bench.transport.permit_join(DEVICE_EUI64, KEY, 60.0)
    await asyncio.wait_for(bench.transport.settle(), WAIT)
    assert bench.device.port.join(KEY) is True  # type: ignore[attr-defined]
    report = await asyncio.wait_for(reports.get(), WAIT)
    assert report == RadioJoin(DEVICE_EUI64, DEVICE_NWK, True, "USE_PRECONFIGURED_KEY")
    key_command = "importTransientKey" if ezsp_version >= 13 else "addTransientLinkKey"
    assert bench.ncp.commands[mark:mark + 4] == ["clearTransientLinkKeys", key_command, "setPolicy", "permitJoining"]
    assert bench.ncp.session is not None and bench.ncp.session.trust_centre.permitting
    # bellows' clean-up after an unsecured join (findKeyTableEntry) is answered, not invalidCommand.
    await asyncio.wait_for(_until(lambda: "findKeyTableEntry" in bench.ncp.commands), WAIT)


async def test_another_key_is_reported_but_never_gets_the_network_key(bench: Bench) -> None:
    reports = await _reports(bench)
    bench.transport.permit_join(DEVICE_EUI64, KEY, 60.0)
    await asyncio.wait_for(bench.transport.settle(), WAIT)
    assert bench.device.port.join(WELL_KNOWN_TC_LINK_KEY) is False  # type: ignore[attr-defined]
    # The NCP sent the network key under the install-code key: it cannot know the device failed.
    assert (await asyncio.wait_for(reports.get(), WAIT)).admitted
    assert bench.ncp.joins[-1][1].outcome is JoinOutcome.KEY_MISMATCH
    assert not bench.device.port.attached  # type: ignore[attr-defined]


async def test_a_device_without_a_transient_key_is_denied(bench: Bench) -> None:
    reports = await _reports(bench)
    bench.transport.permit_join(OTHER_EUI64, KEY, 60.0)  # someone else is whitelisted
    await asyncio.wait_for(bench.transport.settle(), WAIT)
    assert bench.device.port.join(KEY) is False  # type: ignore[attr-defined]
    assert await asyncio.wait_for(reports.get(), WAIT) == RadioJoin(DEVICE_EUI64, DEVICE_NWK, False, "DENY_JOIN")


async def test_outside_the_join_window_the_host_hears_nothing(bench: Bench) -> None:
    reports = await _reports(bench)
    assert bench.device.port.join(KEY) is False  # type: ignore[attr-defined]  # never whitelisted
    bench.transport.permit_join(DEVICE_EUI64, KEY, 60.0)
    bench.transport.end_join(DEVICE_EUI64)  # CCS02: out of the Device Log again
    await asyncio.wait_for(bench.transport.settle(), WAIT)
    assert bench.ncp.session is not None and not bench.ncp.session.trust_centre.permitting
    assert bench.device.port.join(KEY) is False  # type: ignore[attr-defined]
    bench.transport.permit_join(DEVICE_EUI64, KEY, None)
    await asyncio.wait_for(bench.transport.settle(), WAIT)
    assert bench.device.port.join(KEY) is True  # type: ignore[attr-defined]
    # The first report the host gets is this join: the two refused at the MAC layer went unseen.
    assert (await asyncio.wait_for(reports.get(), WAIT)).admitted
    assert [v.outcome for _, v in bench.ncp.joins] == [JoinOutcome.WINDOW_CLOSED, JoinOutcome.WINDOW_CLOSED,
                                                       JoinOutcome.ADMITTED]


async def test_after_an_ncp_reset_the_host_sets_the_join_permissions_again(bench: Bench) -> None:
    bench.transport.permit_join(DEVICE_EUI64, KEY, None)
    await asyncio.wait_for(bench.transport.settle(), WAIT)
    bench.transport.reconnected.clear()
    bench.ncp.reset()  # RAM lost: transient keys and window gone
    assert bench.ncp.session is not None and not bench.ncp.session.trust_centre.permitting
    await asyncio.wait_for(bench.transport.reconnected.wait(), WAIT)
    await asyncio.wait_for(bench.transport.settle(), WAIT)
    assert bench.device.port.join(KEY) is True  # type: ignore[attr-defined]


async def _until(condition) -> None:  # type: ignore[no-untyped-def]
    while not condition():
        await asyncio.sleep(0)
