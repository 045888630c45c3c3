"""SLA policies as data: the rule that gives a finding its remediation deadline, and whether it is on track.

A policy is an ordered list of rules; the first rule whose conditions all hold for a finding gives its deadline
(docs/prioritization.md, "SLA policies"). Policies are stored as versioned JSON (`SlaPolicy.to_data` and
`from_data` for a JSON column, `to_json` and `from_json` for text), and a policy that cannot give every finding
exactly one deadline is refused with InvalidInput naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Final, TypeVar

from patchday.core.errors import InvalidInput
from patchday.core.risk import Decision, Exposure

MAX_DAYS: Final = 3650  # ten years: a longer deadline is a typo, or an exception in disguise
MAX_RULES: Final = 200
MAX_ENVIRONMENT_CHARS: Final = 64  # Host.environment's length
MAX_POLICY_JSON_CHARS: Final = 256 * 1024
DEFAULT_SOON_DAYS: Final = 7
_Choice = TypeVar("_Choice", bound=StrEnum)
_RULE_KEYS: Final = ("decision", "kev", "exposure", "environment", "kev_due_date", "days")


class SlaState(StrEnum):
    ON_TRACK = "on_track"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class FindingFacts:
    """What SLA rules look at. `in_kev` and `kev_due_date` come from the CISA KEV entry (its due date may be
    None); `exposure` and `environment` from the host ("" when the host names no environment)."""

    decision: Decision
    in_kev: bool = False
    kev_due_date: date | None = None
    exposure: Exposure | None = None
    environment: str = ""


@dataclass(frozen=True, slots=True)
class SlaRule:
    """Findings that meet every condition get `days` to be fixed. A condition left None matches anything.

    With `kev_due_date`, a finding whose CVE has a KEV due date gets that date when it is sooner than `days`.
    `environment` is compared ignoring case and surrounding space.
    """

    days: int
    decision: Decision | None = None
    kev: bool | None = None
    exposure: Exposure | None = None
    environment: str | None = None
    kev_due_date: bool = False

    def matches(self, facts: FindingFacts) -> bool:
        return (
            (self.decision is None or self.decision == facts.decision)
            and (self.kev is None or self.kev == facts.in_kev)
            and (self.exposure is None or self.exposure == facts.exposure)
            and (self.environment is None or _same_environment(self.environment, facts.environment))
        )

    def describe(self) -> str:
        """The rule in words: "KEV: 14 days, or the catalog's due date if sooner"."""
        conditions = [
            *([f"decision {self.decision}"] if self.decision is not None else []),
            *(["KEV" if self.kev else "not in KEV"] if self.kev is not None else []),
            *([f"{self.exposure}"] if self.exposure is not None else []),
            *([f"environment {self.environment}"] if self.environment is not None else []),
        ]
        deadline = f"{self.days} days" + (", or the catalog's due date if sooner" if self.kev_due_date else "")
        return f"{', '.join(conditions) or 'any finding'}: {deadline}"


def _same_environment(rule: str, host: str) -> bool:
    return rule.strip().casefold() == host.strip().casefold()


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Version `version` of the SLA policy: its rules, in the order they are tried. Checked on creation
    (`validate_policy`), so every SlaPolicy gives every finding a deadline."""

    version: int
    rules: tuple[SlaRule, ...] = field(default=())

    def __post_init__(self) -> None:
        validate_policy(self)

    def to_data(self) -> dict[str, object]:
        """The policy as plain JSON data: {"version": 1, "rules": [{"kev": true, "kev_due_date": true, "days": 14},
        ...]}; conditions that match anything are left out."""
        return {"version": self.version, "rules": [_rule_json(rule) for rule in self.rules]}

    def to_json(self) -> str:
        """`to_data()` as JSON text."""
        return json.dumps(self.to_data())

    @classmethod
    def from_data(cls, document: object) -> SlaPolicy:
        """The policy `to_data` gave (e.g. read back from a JSON column). Raises InvalidInput naming the field
        ("rules[2].days") for a key patchday does not know, a value of the wrong type, or a policy that fails
        `validate_policy`."""
        if not isinstance(document, dict):
            raise InvalidInput("an SLA policy is a JSON object with version and rules", "policy")
        for key in document:
            if key not in ("version", "rules"):
                raise InvalidInput(f"an SLA policy has no field {key!r}", str(key))
        version = _int(document.get("version"), "version")
        rules = document.get("rules")
        if not isinstance(rules, list):
            raise InvalidInput("rules must be a list of rules", "rules")
        if len(rules) > MAX_RULES:
            raise InvalidInput(f"an SLA policy has at most {MAX_RULES} rules, not {len(rules)}", "rules")
        return cls(version=version, rules=tuple(_rule_from_json(rule, f"rules[{i}]") for i, rule in enumerate(rules)))

    @classmethod
    def from_json(cls, text: str | bytes) -> SlaPolicy:
        """The policy `to_json` wrote; InvalidInput (field "policy") when the text is not JSON or longer than
        MAX_POLICY_JSON_CHARS, otherwise as `from_data`."""
        if len(text) > MAX_POLICY_JSON_CHARS:
            raise InvalidInput(f"an SLA policy is at most {MAX_POLICY_JSON_CHARS} characters of JSON", "policy")
        try:
            document = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise InvalidInput(f"the SLA policy is not JSON: {exc}", "policy") from exc
        return cls.from_data(document)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def validate_policy(policy: SlaPolicy) -> SlaPolicy:
    """`policy` itself when it is usable; otherwise InvalidInput naming the field.

    Refused: a version below 1; no rules or more than MAX_RULES; a rule with days that are not a whole number in
    0..MAX_DAYS, a decision or exposure patchday does not know, an empty environment; a rule that can never
    apply because an earlier rule matches every finding it would (a duplicate is the plainest case); and a
    decision with no fallback rule (one without KEV, exposure or environment conditions), which would leave
    some finding without a deadline.
    """
    if isinstance(policy.version, bool) or not isinstance(policy.version, int) or policy.version < 1:
        raise InvalidInput(f"version must be a whole number from 1, not {policy.version!r}", "version")
    if not policy.rules:
        raise InvalidInput("an SLA policy needs at least one rule", "rules")
    if len(policy.rules) > MAX_RULES:
        raise InvalidInput(f"an SLA policy has at most {MAX_RULES} rules, not {len(policy.rules)}", "rules")
    for index, rule in enumerate(policy.rules):
        _check_rule(rule, f"rules[{index}]")
        for earlier_index, earlier in enumerate(policy.rules[:index]):
            if _conditions(earlier) == _conditions(rule):
                raise InvalidInput(
                    f"rules[{index}] repeats the conditions of rules[{earlier_index}] ({earlier.describe()})",
                    f"rules[{index}]",
                )
            if _covers(earlier, rule):
                raise InvalidInput(
                    f"rules[{index}] ({rule.describe()}) can never apply: rules[{earlier_index}]"
                    f" ({earlier.describe()}) matches every finding it would",
                    f"rules[{index}]",
                )
    uncovered = [
        str(decision)
        for decision in Decision
        if not any(_is_fallback(rule) and rule.decision in (None, decision) for rule in policy.rules)
    ]
    if uncovered:
        raise InvalidInput(
            f"no rule without KEV, exposure or environment conditions covers decision {', '.join(uncovered)},"
            " so some findings would get no deadline",
            "rules",
        )
    return policy


def _check_rule(rule: SlaRule, where: str) -> None:
    if isinstance(rule.days, bool) or not isinstance(rule.days, int) or not 0 <= rule.days <= MAX_DAYS:
        raise InvalidInput(
            f"{where}.days must be a whole number of days from 0 to {MAX_DAYS}, not {rule.days!r}",
            f"{where}.days",
        )
    if rule.decision is not None and rule.decision not in set(Decision):
        raise InvalidInput(
            f"{where}.decision must be one of {', '.join(Decision)}, not {rule.decision!r}", f"{where}.decision"
        )
    if rule.exposure is not None and rule.exposure not in set(Exposure):
        raise InvalidInput(
            f"{where}.exposure must be one of {', '.join(Exposure)}, not {rule.exposure!r}", f"{where}.exposure"
        )
    if rule.kev is not None and not isinstance(rule.kev, bool):
        raise InvalidInput(f"{where}.kev must be true, false or left out, not {rule.kev!r}", f"{where}.kev")
    if not isinstance(rule.kev_due_date, bool):
        raise InvalidInput(f"{where}.kev_due_date must be true or false", f"{where}.kev_due_date")
    if rule.kev_due_date and rule.kev is False:
        raise InvalidInput(f"{where} applies the KEV due date to findings not in KEV", f"{where}.kev_due_date")
    if rule.environment is not None and (
        not isinstance(rule.environment, str)
        or not rule.environment.strip()
        or len(rule.environment) > MAX_ENVIRONMENT_CHARS
    ):
        raise InvalidInput(
            f"{where}.environment must be a name of 1 to {MAX_ENVIRONMENT_CHARS} characters, or left out",
            f"{where}.environment",
        )


def _conditions(rule: SlaRule) -> tuple[object, ...]:
    environment = rule.environment.strip().casefold() if rule.environment is not None else None
    return (rule.decision, rule.kev, rule.exposure, environment)


def _covers(earlier: SlaRule, later: SlaRule) -> bool:
    """Whether `earlier` matches every finding `later` matches (each of its conditions is absent or the same)."""
    return all(
        mine is None or mine == theirs for mine, theirs in zip(_conditions(earlier), _conditions(later), strict=True)
    )


def _is_fallback(rule: SlaRule) -> bool:
    return rule.kev is None and rule.exposure is None and rule.environment is None


def matching_rule(policy: SlaPolicy, facts: FindingFacts) -> tuple[int, SlaRule]:
    """The first rule of `policy` that matches `facts`, and its index (for "which rule applied")."""
    for index, rule in enumerate(policy.rules):
        if rule.matches(facts):
            return index, rule
    # validate_policy guarantees a fallback for every decision, so this is a broken invariant, not bad input.
    raise AssertionError(f"SLA policy version {policy.version} has no rule for {facts}")


def due_date(policy: SlaPolicy, facts: FindingFacts, detected_at: date) -> date:
    """The date by which the finding must be fixed: `detected_at` (a date, or an aware datetime taken in UTC) plus
    the first matching rule's days; with `kev_due_date`, the KEV due date instead when it is sooner, even when
    it has already passed. Raises InvalidInput (field "detected_at") for a naive datetime."""
    start = _utc_day(detected_at)
    _, rule = matching_rule(policy, facts)
    deadline = start + timedelta(days=rule.days)
    if rule.kev_due_date and facts.in_kev and facts.kev_due_date is not None:
        return min(deadline, facts.kev_due_date)
    return deadline


def sla_state(due: date, today: date, soon_days: int = DEFAULT_SOON_DAYS) -> SlaState:
    """Overdue after the due date; due soon from `soon_days` before it through the due date itself; else on track."""
    if soon_days < 0:
        raise InvalidInput(f"soon_days must not be negative, not {soon_days}", "soon_days")
    if today > due:
        return SlaState.OVERDUE
    if (due - today).days <= soon_days:
        return SlaState.DUE_SOON
    return SlaState.ON_TRACK


def _utc_day(moment: date) -> date:
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise InvalidInput(f"detected_at must be an aware datetime, not naive {moment.isoformat()}", "detected_at")
        return moment.astimezone(UTC).date()
    return moment


def _rule_json(rule: SlaRule) -> dict[str, object]:
    document: dict[str, object] = {}
    if rule.decision is not None:
        document["decision"] = str(rule.decision)
    if rule.kev is not None:
        document["kev"] = rule.kev
    if rule.exposure is not None:
        document["exposure"] = str(rule.exposure)
    if rule.environment is not None:
        document["environment"] = rule.environment
    if rule.kev_due_date:
        document["kev_due_date"] = True
    document["days"] = rule.days
    return document


def _rule_from_json(document: object, where: str) -> SlaRule:
    if not isinstance(document, dict):
        raise InvalidInput(f"{where} must be an object with days and conditions", where)
    for key in document:
        if key not in _RULE_KEYS:
            raise InvalidInput(f"{where} has no field {key!r} (known: {', '.join(_RULE_KEYS)})", f"{where}.{key}")
    if "days" not in document:
        raise InvalidInput(f"{where} needs days", f"{where}.days")
    return SlaRule(
        days=_int(document["days"], f"{where}.days"),
        decision=_choice(document.get("decision"), Decision, f"{where}.decision"),
        kev=_optional_bool(document.get("kev"), f"{where}.kev"),
        exposure=_choice(document.get("exposure"), Exposure, f"{where}.exposure"),
        environment=_optional_text(document.get("environment"), f"{where}.environment"),
        kev_due_date=_optional_bool(document.get("kev_due_date"), f"{where}.kev_due_date") or False,
    )


def _int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{where} must be a whole number, not {value!r}", where)
    return value


def _optional_bool(value: object, where: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise InvalidInput(f"{where} must be true, false or left out, not {value!r}", where)


def _optional_text(value: object, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidInput(f"{where} must be a string or left out, not {value!r}", where)


def _choice(value: object, kind: type[_Choice], where: str) -> _Choice | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            pass
    raise InvalidInput(f"{where} must be one of {', '.join(kind)} or left out, not {value!r}", where)


# The defaults of docs/prioritization.md, in the order they are tried (defined last: creating it validates it).
# Act comes before KEV: with the first match winning, an Act finding on a KEV CVE would otherwise get the KEV
# rule's 14 days instead of Act's 7. It takes the catalog's due date too, so a KEV CVE never gets longer than
# the catalog allows.
DEFAULT_POLICY: Final = SlaPolicy(
    version=1,
    rules=(
        SlaRule(days=7, decision=Decision.ACT, kev_due_date=True),
        SlaRule(days=14, kev=True, kev_due_date=True),
        SlaRule(days=30, decision=Decision.ATTEND),
        SlaRule(days=90, decision=Decision.TRACK_STAR),
        SlaRule(days=180, decision=Decision.TRACK),
    ),
)
