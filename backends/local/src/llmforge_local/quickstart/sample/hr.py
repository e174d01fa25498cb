"""HR documents of the sample corpus, including the confidential salary bands."""

from __future__ import annotations

import random

from llmforge_local.quickstart.sample.render import Doc, glossary, pick, slugify, table
from llmforge_local.quickstart.sample.world import COMPANY, FAMILIES, World

HANDBOOK = (
    "Working hours",
    "Performance reviews",
    "Promotions",
    "Learning and development",
    "Relocation",
    "Referral bonus",
    "Sick leave",
    "Bereavement leave",
    "Hiring process",
    "Employee resource groups",
    "Exit process",
    "Internal transfers",
)


def hr_docs(w: World) -> list[Doc]:
    rng = random.Random(f"{w.seed}-hr")
    p, hr = w.policy, w.people["hr"]
    docs = [
        Doc(
            "hr",
            "pto-policy",
            "Paid time off policy",
            "2026-01-02",
            f"""
Full-time employees get {p["pto_days"]} days of PTO (paid time off) per calendar year.

- **Annual PTO:** {p["pto_days"]} days
- **Carry-over limit:** {p["carryover"]} days
- **Approver:** your manager
- **Policy owner:** {hr[0]}

## Requesting time off

Request PTO in the HR portal at least two weeks ahead for absences longer than three days.
""",
        ),
        Doc(
            "hr",
            "parental-leave",
            "Parental leave policy",
            "2025-09-01",
            f"""
Every parent gets {p["parental_weeks"]} weeks of fully paid parental leave, regardless of gender.

- **Paid leave:** {p["parental_weeks"]} weeks
- **Eligibility:** from the first day of employment
- **Policy owner:** {hr[1]}
""",
        ),
        Doc(
            "hr",
            "remote-work",
            "Remote work policy",
            "2025-11-11",
            f"""
Employees may work remotely up to three days a week; fully remote roles are marked in the job offer.

- **Home office allowance:** $600 once
- **Core hours:** 10:00 to 15:00 local time
- **Policy owner:** {hr[2]}
""",
        ),
        Doc(
            "hr",
            "code-of-conduct",
            "Code of conduct",
            "2025-06-30",
            f"""
We treat colleagues, customers and partners with respect. Harassment of any kind is not tolerated.

## Reporting a concern

Talk to your HRBP (human resources business partner) or use the anonymous line. {hr[3]} leads
investigations. The EAP (employee assistance program) offers free confidential counselling.
""",
        ),
        Doc(
            "hr",
            "learning-budget",
            "Learning budget",
            "2026-01-15",
            f"""
Each employee has a yearly learning budget for courses, books and conferences.

- **Yearly learning budget:** {p["learning_budget"]}
- **Approver:** your manager
""",
        ),
        Doc(
            "hr",
            "hrbp-assignments",
            "HR business partner assignments",
            "2026-02-03",
            "Each department has one HRBP (human resources business partner).\n\n"
            + table(
                ["Department", "HR business partner"],
                [[d.title(), hr[5 + i]] for i, d in enumerate(("engineering", "finance", "sales", "hr"))],
            ),
        ),
    ]
    for i, topic in enumerate(HANDBOOK):
        docs.append(
            Doc(
                "hr",
                f"handbook-{slugify(topic)}",
                f"Employee handbook: {topic}",
                f"2025-{i % 12 + 1:02d}-05",
                f"""
This chapter of the {COMPANY} employee handbook covers {topic.lower()}.

- **Chapter owner:** {hr[8 + i]}

## Details

{
                    pick(
                        rng,
                        "Managers apply this chapter consistently across teams.",
                        "Questions go to your HR business partner.",
                        "This chapter is reviewed every year in January.",
                    )
                }
{
                    pick(
                        rng,
                        "Exceptions need written approval from the chapter owner.",
                        "Local law takes precedence where it is more generous.",
                    )
                } Goals are set as OKR (objectives and key results)
where this chapter asks for them.
""",
            )
        )
    for family in FAMILIES:
        rows = [[b["level"], b["min"], b["max"]] for b in w.bands[family]]
        docs.append(
            Doc(
                "hr",
                f"salary-bands-{slugify(family)}",
                f"{family} salary bands",
                "2026-01-31",
                f"""
Confidential. Salary bands for the {family} job family in 2026, in US dollars per year.

{table(["Level", "Minimum", "Maximum"], rows)}

## How bands are used

Offers land between the minimum and the maximum; above the maximum needs approval from the
Chief People Officer.
""",
                {"sensitivity": "confidential"},
            )
        )
    docs.append(
        Doc(
            "hr",
            "benefits-overview",
            "Benefits overview",
            "2026-01-10",
            f"""
{COMPANY} offers health insurance, a pension plan and the EAP (employee assistance program).

- **Pension match:** 5% of base salary
- **Health insurance provider:** Keystone Insurance
""",
        )
    )
    docs.append(
        Doc(
            "hr",
            "performance-improvement",
            "Performance improvement plans",
            "2025-08-19",
            f"""
A PIP (performance improvement plan) lasts 60 days and is agreed with the HR business partner.

- **Duration:** 60 days
- **Policy owner:** {hr[4]}
""",
        )
    )
    for i, dept in enumerate(("engineering", "finance", "sales", "hr")):
        docs.append(
            Doc(
                "hr",
                f"onboarding-{dept}",
                f"{dept.title()} onboarding checklist",
                f"2025-0{i + 3}-14",
                f"""
New hires in {dept} follow this checklist in their first two weeks.

- **Onboarding buddy coordinator:** {hr[20 + i]}
- **Laptop delivery:** first day

## First week

Meet your manager and your HRBP (human resources business partner), set up MFA on every account,
and read the handbook chapters on working hours and performance reviews.
""",
            )
        )
    for i, (benefit, fact, value) in enumerate(
        (
            ("Health insurance", "Provider", "Keystone Insurance"),
            ("Pension plan", "Employer match", "5% of base salary"),
            ("Wellness allowance", "Yearly allowance", "$500"),
            ("Commuter benefit", "Monthly allowance", "$120"),
        )
    ):
        docs.append(
            Doc(
                "hr",
                f"benefit-{slugify(benefit)}",
                benefit,
                f"2026-01-{10 + i}",
                f"""
{benefit} is part of the {COMPANY} benefits package for every full-time employee.

- **{fact}:** {value}
- **Benefit owner:** {hr[24 + i]}
""",
            )
        )
    docs.append(glossary("hr", "HR glossary", "2026-01-12"))
    return docs
