"""Company-wide documents (department ``all``) of the sample corpus."""

from __future__ import annotations

from llmforge_local.quickstart.sample.render import Doc
from llmforge_local.quickstart.sample.world import ACRONYMS, COMPANY, World


def company_docs(w: World) -> list[Doc]:
    p = w.policy
    leaders = "\n".join(f"- **{role}:** {name}" for role, name in w.leaders.items())
    ceo = w.leaders["Chief Executive Officer"]
    return [
        Doc(
            "all",
            "company-overview",
            f"About {COMPANY}",
            "2026-01-05",
            f"""
{COMPANY} makes operations software for logistics, retail and manufacturing companies.

- **Headquarters:** {p["hq"]}
- **Founded:** 2011
- **Chief executive officer:** {ceo}

## Mission

We help operations teams see and fix problems before their customers do.
""",
        ),
        Doc(
            "all",
            "leadership-team",
            "Leadership team",
            "2026-02-01",
            f"""
The ELT (executive leadership team) meets every Monday.

{leaders}
""",
        ),
        Doc(
            "all",
            "information-security-policy",
            "Information security policy",
            "2026-03-01",
            f"""
This policy applies to every employee and contractor.

- **Minimum password length:** {p["password_len"]} characters
- **MFA:** required for every company system
- **Security contact:** security@acme.example
- **Laptop encryption:** required

## Reporting

Report a lost laptop or a suspected phishing e-mail to security@acme.example within one hour.
MFA (multi-factor authentication) is enforced on e-mail, code hosting and the VPN.
""",
        ),
        Doc(
            "all",
            "holidays-2026",
            "Company holidays 2026",
            "2025-12-01",
            """
Offices are closed on these days in 2026.

| Holiday | Date |
|---|---|
| New Year's Day | 2026-01-01 |
| Company day | 2026-06-12 |
| Christmas Day | 2026-12-25 |
""",
        ),
        Doc(
            "all",
            "office-locations",
            "Office locations",
            "2025-10-15",
            f"""
{COMPANY} has four offices. WFH (work from home) is allowed up to three days a week.

| Office | Address |
|---|---|
| Rotterdam | Wilhelminakade 100 |
| Austin | 500 Congress Avenue |
| Singapore | 1 Raffles Place |
| Sao Paulo | Avenida Paulista 1000 |
""",
        ),
        Doc(
            "all",
            "all-hands-2026-q1",
            "All-hands notes Q1 2026",
            "2026-03-27",
            f"""
{ceo} opened the all-hands with the quarter's results and thanked the teams behind Project Helix.

## Highlights

Revenue grew for the twelfth quarter in a row. The company will keep hiring in engineering and sales.
""",
        ),
        Doc(
            "all",
            "all-hands-2026-q2",
            "All-hands notes Q2 2026",
            "2026-06-26",
            f"""
{ceo} shared the half-year plan. Project Helix moved to the second half of the year.

## Questions from employees

Employees asked about hiring plans and the office move; answers are in the recording.
""",
        ),
        Doc(
            "all",
            "company-glossary",
            "Company glossary",
            "2026-01-05",
            "\n".join(f"- {a}: {e}" for a, e in ACRONYMS["all"]),
        ),
    ]
