from model_registry_operator.controllers.conditions import Outcome, build_conditions, condition, is_ready


def by_type(conditions):
    return {c["type"]: c for c in conditions}


def test_ready_outcome_sets_all_three_conditions():
    conditions = by_type(build_conditions(Outcome.ready("Synced", "In sync."), 3, None, now="T1"))
    assert {t: c["status"] for t, c in conditions.items()} == {
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
    }
    assert all(c["observedGeneration"] == 3 and c["lastTransitionTime"] == "T1" for c in conditions.values())
    assert conditions["Ready"]["reason"] == "Synced" and conditions["Ready"]["message"] == "In sync."


def test_transition_time_moves_only_when_status_flips():
    first = build_conditions(Outcome.reconciling("Creating", "Creating."), 1, None, now="T1")
    second = by_type(build_conditions(Outcome.reconciling("InProgress", "Still."), 1, first, now="T2"))
    assert second["Reconciling"]["lastTransitionTime"] == "T1"
    assert second["Reconciling"]["reason"] == "InProgress"
    third = by_type(build_conditions(Outcome.ready("Synced", "Done."), 1, list(second.values()), now="T3"))
    assert third["Ready"]["lastTransitionTime"] == "T3"
    assert third["Reconciling"]["lastTransitionTime"] == "T3"
    assert third["Stalled"]["lastTransitionTime"] == "T1"


def test_is_ready_checks_the_generation():
    status = {"observedGeneration": 2, "conditions": build_conditions(Outcome.ready("Synced", "ok"), 2, None)}
    assert is_ready(status) and is_ready(status, 2)
    assert not is_ready(status, 3)
    stalled = {"conditions": build_conditions(Outcome.stalled("InvalidSpec", "bad"), 2, None)}
    assert not is_ready(stalled)
    assert condition(stalled, "Stalled")["status"] == "True"
