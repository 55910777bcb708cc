"""The shared fixtures themselves: the thread-leak check fails a leaking test and passes a clean one."""

from __future__ import annotations

from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]


def test_thread_leak_check_fails_only_the_test_that_leaves_a_thread(pytester) -> None:
    pytester.syspathinsert(TESTS_DIR)
    conftest = (TESTS_DIR / "conftest.py").read_text()
    assert "_THREAD_GRACE_S = " in conftest
    pytester.makeconftest(conftest.replace("_THREAD_GRACE_S = ", "_THREAD_GRACE_S = 0.05 or "))
    pytester.makepyfile(
        """
        import threading
        import pytest

        release = threading.Event()

        @pytest.mark.usefixtures("no_thread_leak")
        def test_leaks():
            threading.Thread(target=release.wait, name="leaky-radio", daemon=True).start()

        @pytest.mark.usefixtures("no_thread_leak")
        def test_cleans_up():
            worker = threading.Thread(target=lambda: None, name="tidy")
            worker.start()
            worker.join()

        def teardown_module():
            release.set()
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test left 1 thread(s) running: leaky-radio*"])


def test_site_fixture_builds_the_chosen_devices_only(make_site) -> None:
    from emulator.dcc.premises import CHF_ID, ESME_ID, PPMID_ID

    site = make_site((ESME_ID,), start=False)
    assert set(site.devices) == {ESME_ID}
    assert site.hub.eui64 == CHF_ID
    assert site.hub.nwk_of(ESME_ID) is not None and site.hub.nwk_of(PPMID_ID) is None
    site.run(3600.0)
    assert not site.air, "devices that were not started say nothing"
