"""Personal data in questions and answers: e-mail addresses, phone numbers, payment cards
(Luhn-checked), US SSNs, IBANs (mod-97-checked), IP addresses and secret-looking keys.

No maintained PII library that runs offline without downloading a model is installed here
(Presidio needs a spaCy model; scrubadub is unmaintained), so these are strict patterns
with checksums where the format has one, which keeps dates, ISBNs and plain numbers out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmforge.components import Guardrail, GuardResult


def _luhn(digits: str) -> bool:
    total, alt = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if alt:
            d = d * 2 - 9 if d > 4 else d * 2
        total, alt = total + d, not alt
    return total % 10 == 0


def _card(m: re.Match) -> bool:
    digits = re.sub(r"\D", "", m.group(0))
    return 13 <= len(digits) <= 19 and _luhn(digits) and len(set(digits)) > 1


def _iban(m: re.Match) -> bool:
    s = re.sub(r"\s", "", m.group(0)).upper()
    n = "".join(str(int(c, 36)) for c in s[4:] + s[:4])
    return int(n) % 97 == 1


def _phone(m: re.Match) -> bool:
    digits = re.sub(r"\D", "", m.group(0))
    return 7 <= len(digits) <= 15


PATTERNS: dict[str, tuple[re.Pattern, object]] = {
    "email": (re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"), None),
    "card": (re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"), _card),
    "ssn": (re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"), None),
    "iban": (re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"), _iban),
    "phone": (
        re.compile(
            r"(?<![\w-])(?<!\d )(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])\d{3,4}[ .-]\d{3,4}(?![\w-])(?! \d)"
        ),
        _phone,
    ),
    "ip_address": (
        re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"),
        None,
    ),
    "secret": (
        re.compile(
            r"\b(?:AKIA[0-9A-Z]{16}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}|dapi[0-9a-f]{32})\b"
        ),
        None,
    ),
}
KINDS = tuple(PATTERNS)


def find_pii(text: str, kinds: Sequence[str] = KINDS) -> list[dict]:
    """``[{kind, text, start, end}]`` for each match, first kind wins where spans overlap."""
    found: list[dict] = []
    taken: list[tuple[int, int]] = []
    for kind in kinds:
        pattern, valid = PATTERNS[kind]
        for m in pattern.finditer(text or ""):
            a, b = m.span()
            if any(a < e and s < b for s, e in taken):
                continue
            if valid is not None and not valid(m):
                continue
            taken.append((a, b))
            found.append({"kind": kind, "text": m.group(0), "start": a, "end": b})
    return sorted(found, key=lambda f: f["start"])


def _replace(text: str, found: Sequence[dict]) -> str:
    out, last = [], 0
    for f in found:
        out += [text[last : f["start"]], f"[REDACTED:{f['kind']}]"]
        last = f["end"]
    return "".join(out) + text[last:]


def redact(text: str, kinds: Sequence[str] = KINDS) -> str:
    """``text`` with each match replaced by ``[REDACTED:<kind>]``."""
    return _replace(text, find_pii(text, kinds))


@dataclass(frozen=True)
class PIIOptions:
    #: on answers: ``flag``, ``block``, ``redact`` (matches replaced) or ``regenerate``
    policy: str = "block"
    #: on questions: ``flag`` (recorded), ``block`` or ``off``
    input_policy: str = "flag"
    #: which detectors run (default: all)
    kinds: tuple[str, ...] = KINDS
    #: values the context itself states are fine to repeat (a public support address)
    allow_from_context: bool = True

    def __post_init__(self) -> None:
        from llmforge.errors import ConfigError

        if self.policy not in ("flag", "block", "redact", "regenerate"):
            raise ConfigError(f"pii policy {self.policy!r} is not flag, block, redact or regenerate")
        if self.input_policy not in ("flag", "block", "off"):
            raise ConfigError(f"pii input_policy {self.input_policy!r} is not flag, block or off")
        bad = sorted(set(self.kinds) - set(KINDS))
        if bad:
            raise ConfigError(f"unknown pii kind(s) {bad}; known: {list(KINDS)}")


class PII(Guardrail):
    name = "pii"
    description = "finds e-mail, phone, card, SSN, IBAN, IP and secret-key strings in questions and answers"
    Options = PIIOptions

    def check_input(self, question: str, *, user: str | None = None) -> GuardResult | None:
        if self.options.input_policy == "off":
            return None
        found = find_pii(question, self.options.kinds)
        kinds = sorted({f["kind"] for f in found})
        block = self.options.input_policy == "block"
        details = {"matches": [{"kind": f["kind"]} for f in found], "policy": self.options.input_policy}
        if found and not block:
            details["flagged"] = True
        return GuardResult(
            self.name, not (found and block), None, f"question contains {kinds}" if found else "", details
        )

    def check_output(self, question: str, answer: str, contexts: Sequence[str]) -> GuardResult:
        found = find_pii(answer, self.options.kinds)
        if self.options.allow_from_context:
            ctx = "\n".join(contexts or [])
            found = [f for f in found if f["text"] not in ctx]
        kinds = sorted({f["kind"] for f in found})
        policy = self.options.policy
        details: dict = {"matches": [{"kind": f["kind"], "text": f["text"]} for f in found], "policy": policy}
        if found and policy == "redact":
            details["redacted"] = _replace(answer, found)
        if found and policy == "flag":
            details["flagged"] = True
        passed = not found or policy == "flag"
        return GuardResult(self.name, passed, None, f"answer contains {kinds}" if found else "", details)
