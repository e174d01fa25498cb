"""Running guards in their configured order, and what a failing verdict does.

Each guard's options may carry a ``policy``: ``flag`` (keep the answer, mark the verdict),
``block`` (replace it with a refusal), ``regenerate`` (ask again with a stricter prompt, up to
``max_retries`` times, then block) and, for guards that can rewrite text such as ``pii``,
``redact``. A guard without a ``policy`` option blocks when it fails. A guard that raises
fails closed: its verdict is a failure carrying the error, recorded like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from llmforge.components import GuardResult

#: instruction added to the prompt when an answer is regenerated
STRICT_INSTRUCTION = (
    "Answer again using only facts stated in the numbered context passages. Copy names, "
    "numbers, dates and amounts exactly as the context states them, cite each fact with its "
    "[n] marker, and if the context does not answer the question, say you don't know."
)


class GuardOutcome(NamedTuple):
    """What the output guards decided: the text to return, every verdict, whether refused."""

    answer: str
    verdicts: list[GuardResult]
    refused: bool


def policy_of(guard: Any) -> str:
    """The guard's configured policy (``block`` when its options name none)."""
    return str(getattr(guard.options, "policy", "block") if guard.options is not None else "block")


def _run(guard: Any, method: str, *args: Any, **kw: Any) -> GuardResult | None:
    try:
        result = getattr(guard, method)(*args, **kw)
    except Exception as exc:  # fail closed, keep the error in the verdict
        return GuardResult(
            getattr(guard, "name", type(guard).__name__),
            False,
            None,
            f"guard raised {type(exc).__name__}: {exc}",
            {"error": f"{type(exc).__name__}: {exc}", "policy": policy_of(guard), "action": "block"},
        )
    if result is not None and not isinstance(result, GuardResult):
        return GuardResult(
            getattr(guard, "name", type(guard).__name__),
            False,
            None,
            f"guard returned {type(result).__name__}, not a GuardResult",
            {"error": "bad return type", "policy": policy_of(guard), "action": "block"},
        )
    return result


def _action(guard: Any, verdict: GuardResult) -> str:
    """``pass``, ``flag``, ``redact``, ``regenerate`` or ``block`` for one verdict."""
    if verdict.details.get("error"):
        return "flag" if policy_of(guard) == "flag" else "block"
    if verdict.passed:
        return "flag" if verdict.details.get("flagged") else "pass"
    policy = policy_of(guard)
    if policy == "redact" and "redacted" in verdict.details:
        return "redact"
    return policy if policy in ("flag", "regenerate") else "block"


def apply_input_guards(
    guards: Sequence[Any], question: str, user: str | None = None
) -> tuple[list[GuardResult], bool]:
    """Every input verdict, in order, and whether the question is refused."""
    verdicts, refused = [], False
    for g in guards:
        v = _run(g, "check_input", question, user=user)
        if v is None:
            continue
        act = _action(g, v)
        v.details.setdefault("action", act)
        verdicts.append(v)
        refused |= act in ("block", "regenerate", "redact")
    return verdicts, refused


def apply_output_guards(
    guards: Sequence[Any],
    question: str,
    answer: str,
    contexts: Sequence[str],
    regenerate: Callable[[str], str] | None = None,
    max_retries: int | None = None,
) -> GuardOutcome:
    """Run the output guards in order on ``answer`` and apply each one's policy.

    ``regenerate(instruction)`` returns a new answer generated with ``instruction`` (see
    :data:`STRICT_INSTRUCTION` plus the failed claims) added to the prompt; without it a
    ``regenerate`` policy blocks. Retries default to the largest ``max_retries`` option of
    the guards asking for them (1 when none says). Verdicts of every attempt are returned,
    each with ``details["attempt"]``; ``refused`` means the caller must not show ``answer``.
    """
    all_verdicts: list[GuardResult] = []
    attempt = 0
    while True:
        verdicts, actions, text = [], [], answer
        for g in guards:
            v = _run(g, "check_output", question, text, list(contexts))
            if v is None:
                continue
            act = _action(g, v)
            if act == "redact":
                text = v.details["redacted"]
            v.details.setdefault("action", act)
            v.details["attempt"] = attempt
            verdicts.append(v)
            actions.append((g, act))
        all_verdicts += verdicts
        if any(a == "block" for _, a in actions):
            return GuardOutcome(text, all_verdicts, True)
        retry = [g for g, a in actions if a == "regenerate"]
        if not retry:
            return GuardOutcome(text, all_verdicts, False)
        limit = max_retries
        if limit is None:
            limit = max(int(getattr(g.options, "max_retries", 1)) for g in retry)
        if regenerate is None or attempt >= limit:
            for v in verdicts:
                if v.details.get("action") == "regenerate":
                    v.details["action"] = "block"
            return GuardOutcome(text, all_verdicts, True)
        attempt += 1
        try:
            answer = regenerate(strict_instruction(verdicts))
        except Exception as exc:  # a failed retry refuses; the error stays in the log
            err = f"{type(exc).__name__}: {exc}"
            all_verdicts.append(
                GuardResult(
                    "regenerate",
                    False,
                    None,
                    f"regeneration raised {err}",
                    {"error": err, "action": "block", "attempt": attempt},
                )
            )
            return GuardOutcome(text, all_verdicts, True)


def strict_instruction(verdicts: Sequence[GuardResult]) -> str:
    """:data:`STRICT_INSTRUCTION` plus what the failing verdicts said was wrong."""
    wrong = [f"- {v.guard}: {v.reason}" for v in verdicts if not v.passed and v.reason]
    return STRICT_INSTRUCTION + ("\nThe previous answer was rejected:\n" + "\n".join(wrong) if wrong else "")
