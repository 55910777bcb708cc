"""The catalogue holds exactly the 41 checks of precert-checks.md, and ``certify list`` shows them."""

from __future__ import annotations

import json
import re

import pytest
from certify_paths import PRECERT_DOC

from emulator.certify import CATALOGUE, Group, Verdict, select


def _doc_rows() -> dict[str, str]:
    """ID -> source column of every check table row in shared/docs/precert-checks.md."""
    rows = {}
    for line in PRECERT_DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| ([ABCD]\d+) \| (.+) \| (.+) \|$", line)
        if match:
            rows[match.group(1)] = match.group(3).strip()
    return rows


def test_the_catalogue_is_the_documented_list_of_41_checks_with_their_sources() -> None:
    documented = _doc_rows()
    assert len(documented) == 41
    assert [c.check_id for c in CATALOGUE] == list(documented)
    for check in CATALOGUE:
        assert check.source == documented[check.check_id], check.check_id
        assert check.group is Group(check.check_id[0])
        assert check.needs and check.verdict_rule and check.applies_to


SCRIPTED_C_AND_D = ("C2", "C3", "D1", "D2", "D3", "D4")
"""The C and D checks that have a device script so far (the rest say what they wait for)."""


def test_image_and_ota_client_checks_are_implemented_and_the_others_say_what_they_wait_for() -> None:
    for check in CATALOGUE:
        if check.group in (Group.IMAGE, Group.OTA_CLIENT) or check.check_id in SCRIPTED_C_AND_D:
            assert check.implemented, check.check_id
        else:
            assert not check.implemented
            result = check.not_available()
            assert result.verdict is Verdict.NOT_AVAILABLE
            assert "waits for" in result.summary, check.check_id


def test_only_selects_in_order_and_rejects_unknown_or_foreign_ids() -> None:
    assert [c.check_id for c in select("a4, A1,A4")] == ["A4", "A1"]
    with pytest.raises(ValueError, match="unknown check 'A13'"):
        select("A1,A13")
    with pytest.raises(ValueError, match=r"B1 is a group B check \(The OTA client"):
        select("B1", group=Group.IMAGE)


def test_certify_list_json_has_one_line_per_check(certify) -> None:
    code, out, _ = certify("list", "--json")
    assert code == 0
    entries = [json.loads(line) for line in out.splitlines()]
    assert [e["id"] for e in entries] == [c.check_id for c in CATALOGUE]
    statuses = {e["id"]: e["status"] for e in entries}
    assert [i for i, s in statuses.items() if s == "implemented"] == (
        [f"A{n}" for n in range(1, 13)] + [f"B{n}" for n in range(1, 17)] + ["C2", "C3", "D1", "D2", "D3", "D4"])
    b1 = next(e for e in entries if e["id"] == "B1")
    assert b1["status"] == "implemented" and "Match Descriptor" in b1["limits"]
    assert b1["source"] == "Nordic FOTA docs; HenryGiraldo/gbcs ch.c"
    assert set(b1["needs"]) == {"virtual", "bench"}
    c1 = next(e for e in entries if e["id"] == "C1")
    assert c1["status"] == "not-available" and "GBCS codec" in c1["reason"]
    assert "suite-1" in next(e for e in entries if e["id"] == "A11")["limits"]


def test_certify_list_text_and_subset(certify) -> None:
    code, out, _ = certify("list", "--only", "A9,D5")
    assert code == 0
    assert out.splitlines()[0].startswith("A9   implemented")
    assert "D5   not available" in out and "source: dccboxed-keystore" in out
    assert "A1 " not in out


def test_certify_list_bad_only_is_a_user_error(certify) -> None:
    code, _, err = certify("list", "--only", "Z9")
    assert code == 2
    assert "unknown check 'Z9'" in err


def test_docs_list_every_check_with_its_status_and_every_mutation() -> None:
    from certify_paths import REPO

    from emulator.certify.mutations import MUTATIONS

    doc = (REPO / "docs" / "certify.md").read_text(encoding="utf-8")
    rows: dict[str, str] = {}  # the first table: "| ID | check | source | needs | status |"
    for match in re.finditer(r"^\| ([ABCD]\d+) \| .+ \| ([^|]+) \|$", doc, re.M):
        rows.setdefault(match.group(1), match.group(2))
    for check in CATALOGUE:
        status = rows[check.check_id].strip()
        assert status.startswith("implemented" if check.implemented else "not available"), check.check_id
    for mutation in MUTATIONS:
        assert re.search(rf"^\| `{mutation.name}` \| .+ \| {mutation.expected_check} \|", doc, re.M), mutation.name
