"""Engineering documents of the sample corpus."""

from __future__ import annotations

import random

from llmforge_local.quickstart.sample.render import Doc, facts, glossary, months_before, pick, slugify, table
from llmforge_local.quickstart.sample.world import COMPANY, World

ADR_TOPICS = (
    "Use event sourcing for the ledger",
    "Adopt OpenTelemetry for tracing",
    "Standardize on PostgreSQL 16",
    "Run batch jobs on the lakehouse",
    "Retire the SOAP partner API",
    "Sign all build artifacts",
    "Use feature flags for rollouts",
    "Move secrets to the central vault",
    "Adopt trunk-based development",
    "Store audit logs for seven years",
    "Split the monolith by bounded context",
    "Cache pricing results at the edge",
    "Require two reviewers for Tier 1 services",
    "Deprecate the legacy reporting portal",
    "Use gRPC between internal services",
)
TEAMS = ("Platform", "Payments", "Data", "Identity", "Mobile", "Developer Experience")
RISKS = {
    "On track": "No material risks are open; the team reviews the risk register every sprint.",
    "At risk": "The vendor integration is running late and two engineers moved to incident work, "
    "so the target date may slip by a month unless scope is cut.",
    "Blocked": "Work is blocked on a security review of the data flows; the owner has escalated "
    "the review to the change advisory board.",
    "Completed": "The project is complete; remaining follow-ups live in the team backlog.",
    "Paused": "The project is paused while leadership re-prioritizes the roadmap; no spend is "
    "expected until it restarts.",
}


def project(rng: random.Random, p: dict) -> Doc:
    body = f"""{p["name"]} {p["purpose"]}. {
        pick(
            rng,
            "It was approved in the annual planning cycle.",
            "It came out of the customer advisory board last year.",
            "It is one of the company priorities this year.",
        )
    }
The team has {p["team"]} engineers.

{
        facts(
            [
                ("Status", p["status"]),
                ("Owner", p["owner"]),
                ("Target date", p["target"]),
                ("Budget", p["budget"]),
                ("Executive sponsor", p["sponsor"]),
                ("Team size", p["team"]),
            ]
        )
    }

## Goals

{
        pick(
            rng,
            "The main goal is to reduce operating cost and manual work.",
            "The main goal is to make the product faster for our largest customers.",
            "The main goal is to remove a system that is near its end of life.",
        )
    } Success is measured
against the SLO (service level objective) agreed with the owning team. {p["owner"]} reports progress
in the monthly engineering review.

## Milestones

{
        table(
            ["Milestone", "Date"],
            [
                ["Design review", months_before(p["target"], 7)],
                ["Beta", months_before(p["target"], 3)],
                ["General availability", p["target"]],
            ],
        )
    }

## Risks

{RISKS[p["status"]]}
"""
    return Doc("engineering", p["slug"], p["name"], p["updated"], body)


def service(rng: random.Random, s: dict) -> Doc:
    body = f"""The {s["name"]} service is a {s["tier"]} service. {
        pick(
            rng,
            "It handles production traffic around the clock.",
            "Customers notice within minutes when it fails.",
            "It is deployed to three regions.",
        )
    }

{
        facts(
            [
                ("Service owner", s["owner"]),
                ("SLO", s["slo"] + " availability"),
                ("Tier", s["tier"]),
                ("Pager rotation", s["rotation"]),
                ("Dependencies", ", ".join(s["deps"])),
            ]
        )
    }

## Alerts

Page the {s["rotation"]} rotation when the error budget burn rate exceeds 2x for one hour.
Every page gets an RCA (root cause analysis) within five working days.

## Escalation

If the on-call engineer cannot mitigate within 30 minutes, escalate to {s["owner"]}, the service owner,
and open an incident in the incident channel. We track MTTR (mean time to recovery) per quarter.
"""
    return Doc("engineering", f"service-{s['name']}", f"{s['name']} service", s["updated"], body)


def adr(rng: random.Random, n: int, topic: str, w: World) -> Doc:
    status = pick(rng, "Accepted", "Accepted", "Superseded", "Proposed")
    decider = rng.choice(w.people["engineering"])
    date = f"{rng.choice((2024, 2025, 2026))}-{rng.randint(1, 12):02d}-{rng.choice((3, 12, 21)):02d}"
    body = f"""{facts([("Status", status), ("Decided", date), ("Decider", decider)])}

## Context

Teams raised the question in the architecture guild more than once. {
        pick(
            rng,
            "The current approach costs us on-call time every week.",
            "Two incidents last year traced back to it.",
            "New hires find the current approach confusing.",
        )
    }

## Decision

We will {topic[0].lower() + topic[1:]}. An ADR (architecture decision record) like this one is the
place to look before revisiting the question.

## Consequences

{
        pick(
            rng,
            "Existing services migrate within two quarters.",
            "New services follow this from day one.",
            "The platform team provides templates and migration help.",
        )
    }
"""
    return Doc("engineering", f"adr-{n:03d}-{slugify(topic)}", f"ADR-{n:03d}: {topic}", date, body)


def team(rng: random.Random, name: str, w: World, i: int) -> Doc:
    eng = w.people["engineering"]
    manager, lead = eng[10 + i], eng[20 + i]
    owned = [p["name"] for p in w.projects if p["owner"] in eng[i * 5 : (i + 1) * 5]] or ["no projects yet"]
    body = f"""The {name} team builds and runs {
        pick(rng, "shared infrastructure", "customer-facing services", "internal tools")
    } for {COMPANY}.

{facts([("Engineering manager", manager), ("Tech lead", lead), ("Slack channel", "#team-" + slugify(name))])}

## Members

{chr(10).join("- " + m for m in eng[i * 5 : (i + 1) * 5])}

## Projects

The team currently works on {", ".join(owned)}.
"""
    return Doc("engineering", f"team-{slugify(name)}", f"{name} team", f"2026-0{i + 1}-10", body)


def engineering_guides(w: World) -> list[Doc]:
    cab_chair = w.people["engineering"][3]
    return [
        Doc(
            "engineering",
            "incident-response",
            "Incident response process",
            "2026-02-14",
            f"""
Every production incident has an incident commander and a scribe.

- **Incident commander rotation:** eng-incident-commanders
- **Severity levels:** SEV1, SEV2, SEV3
- **Postmortem deadline:** 5 working days

## Severity

A SEV1 is a full outage of a Tier 1 service or any data loss. A SEV2 is a partial outage.

## Postmortems

Each SEV1 and SEV2 gets an RCA (root cause analysis) reviewed by the CAB (change advisory board),
which {cab_chair} chairs. Action items get owners and dates.
""",
        ),
        Doc(
            "engineering",
            "deploying-to-production",
            "Deploying to production",
            "2026-03-02",
            """
Deploys go through CI (continuous integration) and the release pipeline; nobody deploys from a laptop.

- **Deploy window:** Monday to Thursday, 09:00 to 16:00 CET
- **Change freeze:** December 15 to January 5
- **Rollback time target:** 10 minutes

## Feature flags

New behaviour ships dark behind a feature flag and is rolled out in stages of 1%, 10%, 50% and 100%.
""",
        ),
        Doc(
            "engineering",
            "code-review",
            "Code review guidelines",
            "2025-11-20",
            """
Every change needs one approving review; Tier 1 services need two.

## What reviewers check

Correctness first, then tests, then readability. Reviews should be answered within one working day.
""",
        ),
        Doc(
            "engineering",
            "on-call-handbook",
            "On-call handbook",
            "2026-01-08",
            f"""
On-call engineers carry the pager for one week at a time.

- **On-call stipend:** $400 per week
- **Handover day:** Monday
- **Primary contact for escalations:** {w.people["engineering"][4]}

## Expectations

Acknowledge a page within 5 minutes. Our SRE (site reliability engineering) team runs the rotation
tooling and the quarterly game days.
""",
        ),
    ]


def engineering_docs(w: World) -> list[Doc]:
    rng = random.Random(f"{w.seed}-engineering")
    docs = [project(rng, p) for p in w.projects]
    docs += [service(rng, s) for s in w.services]
    docs += [adr(rng, n, t, w) for n, t in enumerate(ADR_TOPICS, 1)]
    docs += [team(rng, name, w, i) for i, name in enumerate(TEAMS)]
    docs += engineering_guides(w)
    docs.append(glossary("engineering", "Engineering glossary", "2026-01-20"))
    return docs
