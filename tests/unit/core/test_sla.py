"""SLA policies: the default rules and their order, due dates and states, the validator, JSON round trips."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from patchday.core.errors import InvalidInput
from patchday.core.risk import Decision, Exposure
from patchday.core.sla import (
    DEFAULT_POLICY,
    FindingFacts,
    SlaPolicy,
    SlaRule,
    SlaState,
    due_date,
    matching_rule,
    sla_state,
    validate_policy,
)
from patchday.feeds.kev import read_kev

KEV_FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "feeds" / "kev-2026.08.21-first200.json.gz"
DETECTED = date(2026, 8, 21)
FALLBACKS = tuple(SlaRule(days=days, decision=d) for d, days in zip(Decision, (180, 90, 30, 7), strict=True))


@pytest.mark.parametrize(
    ("decision", "days"),
    [(Decision.ACT, 7), (Decision.ATTEND, 30), (Decision.TRACK_STAR, 90), (Decision.TRACK, 180)],
)
def test_default_deadlines_by_decision(decision: Decision, days: int) -> None:
    assert due_date(DEFAULT_POLICY, FindingFacts(decision), DETECTED) == DETECTED + timedelta(days=days)


def test_kev_gets_the_catalog_due_date_or_14_days_whichever_is_sooner() -> None:
    # CVE-2024-1708, added to KEV 2026-04-28 with due date 2026-05-12 (the real catalog, 2026.08.21).
    entry = next(e for e in read_kev(KEV_FIXTURE).entries if e.cve_id == "CVE-2024-1708")
    assert entry.due_date == date(2026, 5, 12)
    facts = FindingFacts(Decision.ATTEND, in_kev=True, kev_due_date=entry.due_date)
    assert due_date(DEFAULT_POLICY, facts, date(2026, 4, 28)) == date(2026, 5, 12)  # 14 days = due date
    assert due_date(DEFAULT_POLICY, facts, date(2026, 5, 1)) == date(2026, 5, 12)  # catalog sooner
    assert due_date(DEFAULT_POLICY, facts, date(2026, 4, 20)) == date(2026, 5, 4)  # 14 days sooner
    # Found after the catalog's date: the deadline has passed already, and the finding is overdue at once.
    late = due_date(DEFAULT_POLICY, facts, DETECTED)
    assert late == date(2026, 5, 12)
    assert sla_state(late, DETECTED) is SlaState.OVERDUE
    # In KEV without a due date (only a CVE record noted it): 14 days.
    assert due_date(DEFAULT_POLICY, FindingFacts(Decision.TRACK, in_kev=True), DETECTED) == date(2026, 9, 4)


def test_act_comes_before_kev_so_an_act_finding_in_kev_keeps_its_7_days() -> None:
    facts = FindingFacts(Decision.ACT, in_kev=True, kev_due_date=DETECTED + timedelta(days=21))
    assert matching_rule(DEFAULT_POLICY, facts) == (0, DEFAULT_POLICY.rules[0])
    assert due_date(DEFAULT_POLICY, facts, DETECTED) == DETECTED + timedelta(days=7)
    sooner = FindingFacts(Decision.ACT, in_kev=True, kev_due_date=DETECTED + timedelta(days=3))
    assert due_date(DEFAULT_POLICY, sooner, DETECTED) == DETECTED + timedelta(days=3)


def test_the_default_rules_read_in_order() -> None:
    assert [rule.describe() for rule in DEFAULT_POLICY.rules] == [
        "decision Act: 7 days, or the catalog's due date if sooner",
        "KEV: 14 days, or the catalog's due date if sooner",
        "decision Attend: 30 days",
        "decision Track*: 90 days",
        "decision Track: 180 days",
    ]


FACTS = st.builds(
    FindingFacts,
    decision=st.sampled_from(Decision),
    in_kev=st.booleans(),
    kev_due_date=st.none() | st.dates(min_value=date(2021, 1, 1), max_value=date(2028, 1, 1)),
    exposure=st.none() | st.sampled_from(Exposure),
    environment=st.sampled_from(["", "production", "staging"]),
)


@given(FACTS, st.dates(min_value=date(2022, 1, 1), max_value=date(2027, 1, 1)))
def test_default_policy_never_gives_more_time_for_kev_or_a_more_urgent_decision(facts: FindingFacts, day: date) -> None:
    due = due_date(DEFAULT_POLICY, facts, day)
    if not facts.in_kev:
        assert due_date(DEFAULT_POLICY, FindingFacts(facts.decision, True, facts.kev_due_date), day) <= due
    for higher in list(Decision)[facts.decision.rank + 1 :]:
        assert due_date(DEFAULT_POLICY, FindingFacts(higher, facts.in_kev, facts.kev_due_date), day) <= due


def test_rules_on_exposure_and_environment_match_and_the_first_match_wins() -> None:
    policy = SlaPolicy(
        version=3,
        rules=(
            SlaRule(days=3, decision=Decision.ACT, exposure=Exposure.INTERNET_FACING),
            SlaRule(days=14, environment="Production", decision=Decision.ATTEND),
            SlaRule(days=60, environment="staging"),
            *FALLBACKS,
        ),
    )
    internet = FindingFacts(Decision.ACT, exposure=Exposure.INTERNET_FACING, environment="staging")
    assert matching_rule(policy, internet)[0] == 0
    assert matching_rule(policy, FindingFacts(Decision.ATTEND, environment=" production "))[0] == 1
    assert matching_rule(policy, FindingFacts(Decision.ACT, environment="STAGING"))[0] == 2
    assert matching_rule(policy, FindingFacts(Decision.ACT))[0] == 6
    assert due_date(policy, FindingFacts(Decision.TRACK), DETECTED) == DETECTED + timedelta(days=180)


def test_detected_at_may_be_an_aware_datetime_taken_in_utc_but_not_a_naive_one() -> None:
    evening_in_new_york = datetime(2026, 8, 21, 22, 30, tzinfo=ZoneInfo("America/New_York"))  # 02:30 UTC on the 22nd
    assert due_date(DEFAULT_POLICY, FindingFacts(Decision.ACT), evening_in_new_york) == date(2026, 8, 29)
    assert due_date(DEFAULT_POLICY, FindingFacts(Decision.ACT), datetime(2026, 8, 21, tzinfo=UTC)) == date(2026, 8, 28)
    with pytest.raises(InvalidInput) as info:
        due_date(DEFAULT_POLICY, FindingFacts(Decision.ACT), datetime(2026, 8, 21, 12))
    assert info.value.field == "detected_at"


@pytest.mark.parametrize(
    ("today", "state"),
    [
        (date(2026, 8, 1), SlaState.ON_TRACK),
        (date(2026, 8, 13), SlaState.ON_TRACK),  # 8 days left
        (date(2026, 8, 14), SlaState.DUE_SOON),  # 7 days left
        (date(2026, 8, 21), SlaState.DUE_SOON),  # the due date itself
        (date(2026, 8, 22), SlaState.OVERDUE),
    ],
)
def test_sla_state_around_the_due_date(today: date, state: SlaState) -> None:
    assert sla_state(date(2026, 8, 21), today) is state


def test_sla_state_with_another_warning_window() -> None:
    assert sla_state(date(2026, 8, 21), date(2026, 8, 20), soon_days=0) is SlaState.ON_TRACK
    assert sla_state(date(2026, 8, 21), date(2026, 7, 22), soon_days=30) is SlaState.DUE_SOON
    with pytest.raises(InvalidInput) as info:
        sla_state(date(2026, 8, 21), date(2026, 8, 20), soon_days=-1)
    assert info.value.field == "soon_days"


# --- the validator ---


def policy_json(*rules: dict[str, object], version: object = 2) -> str:
    fallbacks = [{"decision": str(d), "days": 30} for d in Decision]
    return json.dumps({"version": version, "rules": [*rules, *fallbacks]})


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (policy_json({"decision": "Act", "days": -1}), "rules[0].days", "from 0 to 3650"),
        (policy_json({"decision": "Act", "days": 3651}), "rules[0].days", "from 0 to 3650"),
        (policy_json({"decision": "Act", "days": 7.5}), "rules[0].days", "whole number"),
        (policy_json({"decision": "Act", "days": True}), "rules[0].days", "whole number"),
        (policy_json({"decision": "Act", "days": "7"}), "rules[0].days", "whole number"),
        (policy_json({"decision": "Urgent", "days": 7}), "rules[0].decision", "Track, Track*, Attend, Act"),
        (policy_json({"decision": "act", "days": 7}), "rules[0].decision", "not 'act'"),
        (policy_json({"exposure": "dmz", "days": 7}), "rules[0].exposure", "internet-facing, internal, isolated"),
        (policy_json({"kev": "yes", "days": 7}), "rules[0].kev", "true, false"),
        (policy_json({"kev": False, "kev_due_date": True, "days": 7}), "rules[0].kev_due_date", "not in KEV"),
        (policy_json({"environment": " ", "days": 7}), "rules[0].environment", "1 to 64 characters"),
        (policy_json({"environment": 3, "days": 7}), "rules[0].environment", "a string"),
        (policy_json({"decision": "Act", "days": 7, "owner": "x"}), "rules[0].owner", "no field 'owner'"),
        (policy_json({"decision": "Act"}), "rules[0].days", "needs days"),
        (policy_json([7]), "rules[0]", "must be an object"),  # type: ignore[arg-type]
        (policy_json({"kev": True, "days": 7}, {"kev": True, "days": 10}), "rules[1]", "repeats the conditions"),
        (
            policy_json({"environment": "prod", "days": 7}, {"environment": "PROD ", "days": 10}),
            "rules[1]",
            "repeats",
        ),
        (
            policy_json({"kev": True, "days": 7}, {"kev": True, "decision": "Act", "days": 3}),
            "rules[1]",
            "can never apply: rules[0]",
        ),
        (policy_json(version=0), "version", "from 1"),
        (policy_json(version="1"), "version", "whole number"),
        (json.dumps({"version": 1, "rules": [{"decision": "Act", "days": 7}]}), "rules", "Track, Track*, Attend"),
        (json.dumps({"version": 1, "rules": []}), "rules", "at least one rule"),
        (json.dumps({"version": 1, "rules": {}}), "rules", "a list"),
        (json.dumps({"version": 1, "rules": [{"days": 1}] * 201}), "rules", "at most 200"),
        (json.dumps({"version": 1, "rules": [{"days": 1}], "by": "me"}), "by", "no field 'by'"),
        (json.dumps([1]), "policy", "JSON object"),
        ('{"version": 1, "rules": [{"days": NaN}]}', "policy", "not JSON"),
        ("{", "policy", "not JSON"),
        ("[" * 100_000, "policy", "not JSON"),
        (" " * 300_000, "policy", "at most"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(text: str, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        SlaPolicy.from_json(text)
    assert info.value.field == field
    assert words in str(info.value)


def test_a_fallback_per_decision_is_enough_and_a_catch_all_rule_covers_every_decision() -> None:
    assert SlaPolicy.from_json(policy_json()).version == 2
    catch_all = SlaPolicy(version=1, rules=(SlaRule(days=7, kev=True), SlaRule(days=30)))
    assert due_date(catch_all, FindingFacts(Decision.ACT), DETECTED) == DETECTED + timedelta(days=30)
    without_track = tuple(rule for rule in FALLBACKS if rule.decision is not Decision.TRACK)
    with pytest.raises(InvalidInput, match="covers decision Track,") as info:
        SlaPolicy(version=1, rules=(SlaRule(days=7, decision=Decision.TRACK, kev=True), *without_track))
    assert info.value.field == "rules"


def test_policies_built_in_code_are_checked_too() -> None:
    with pytest.raises(InvalidInput) as info:
        SlaPolicy(version=1, rules=(*FALLBACKS, SlaRule(days=-3, exposure=Exposure.ISOLATED)))
    assert info.value.field == "rules[4].days"
    assert validate_policy(DEFAULT_POLICY) is DEFAULT_POLICY


# --- JSON ---


def test_the_default_policy_as_json() -> None:
    assert json.loads(DEFAULT_POLICY.to_json()) == {
        "version": 1,
        "rules": [
            {"decision": "Act", "kev_due_date": True, "days": 7},
            {"kev": True, "kev_due_date": True, "days": 14},
            {"decision": "Attend", "days": 30},
            {"decision": "Track*", "days": 90},
            {"decision": "Track", "days": 180},
        ],
    }
    assert SlaPolicy.from_json(DEFAULT_POLICY.to_json()) == DEFAULT_POLICY
    assert SlaPolicy.from_json(DEFAULT_POLICY.to_json().encode()) == DEFAULT_POLICY
    assert SlaPolicy.from_data(DEFAULT_POLICY.to_data()) == DEFAULT_POLICY
    with pytest.raises(InvalidInput) as info:
        SlaPolicy.from_data({"version": 1, "rules": [{"days": -1}]})
    assert info.value.field == "rules[0].days"


RULES = st.builds(
    SlaRule,
    days=st.integers(min_value=0, max_value=3650),
    decision=st.none() | st.sampled_from(Decision),
    kev=st.none() | st.booleans(),
    exposure=st.none() | st.sampled_from(Exposure),
    environment=st.none() | st.sampled_from(["production", "staging", "lab"]),
)


@given(st.lists(RULES, max_size=8), st.integers(min_value=1, max_value=10_000), st.booleans())
def test_json_round_trips_any_valid_policy(rules: list[SlaRule], version: int, kev_due: bool) -> None:
    rules = [
        SlaRule(r.days, r.decision, r.kev, r.exposure, r.environment, kev_due and r.kev is not False) for r in rules
    ]
    try:
        policy = SlaPolicy(version=version, rules=(*rules, *FALLBACKS))
    except InvalidInput:
        assume(False)
        raise
    assert SlaPolicy.from_json(policy.to_json()) == policy
    for facts in (FindingFacts(d, in_kev=True, kev_due_date=DETECTED) for d in Decision):
        assert due_date(policy, facts, DETECTED) >= DETECTED  # every finding gets a deadline
