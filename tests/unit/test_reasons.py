"""README's table of condition reasons and its list of Events are the contract people read;
reasons.py is what the operator writes. They must say the same."""

import re
from pathlib import Path

from model_registry_operator.reasons import EventReason, Reason

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_section(start: str, end: str) -> str:
    text = README.read_text()
    return text[text.index(start) : text.index(end, text.index(start))]


def words(text: str) -> set[str]:
    return set(re.findall(r"`([A-Z][A-Za-z]+)`", text))


def test_readme_table_lists_every_condition_reason_and_no_other():
    table = readme_section("| condition | reasons |", "\n\n")
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("|")[1].strip() for row in rows] == ["`Ready`", "`Reconciling`", "`Stalled`"]
    listed = set().union(*(words(row.split("|")[2]) for row in rows))
    assert listed == {reason.value for reason in Reason}


def test_readme_lists_every_event_reason_and_no_other():
    events = readme_section("Events: ", "\n\n")
    condition_types = {"Ready", "Reconciling", "Stalled"}  # "a Warning for each reason ... `Stalled` with"
    assert words(events) - condition_types == {reason.value for reason in EventReason}


def test_no_word_means_two_things():
    assert not {r.value for r in Reason} & {r.value for r in EventReason}
