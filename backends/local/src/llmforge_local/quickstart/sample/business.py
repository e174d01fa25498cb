"""Finance and sales documents of the sample corpus."""

from __future__ import annotations

import random

from llmforge_local.quickstart.sample.render import Doc, facts, glossary, pick, slugify, table
from llmforge_local.quickstart.sample.world import COMPANY, World


def finance_docs(w: World) -> list[Doc]:
    rng = random.Random(f"{w.seed}-finance")
    p, fin = w.policy, w.people["finance"]
    docs = []
    for q in w.quarters:
        docs.append(
            Doc(
                "finance",
                f"results-{q['slug']}",
                f"Quarterly results {q['name']}",
                q["updated"],
                f"""
{COMPANY} closed {q["name"]} with revenue of {q["revenue"]}. {
                    pick(
                        rng,
                        "Growth came mostly from enterprise renewals.",
                        "New logos in EMEA drove most of the growth.",
                        "Usage-based pricing added to revenue for the first time.",
                    )
                }

{
                    facts(
                        [
                            ("Revenue", q["revenue"]),
                            ("Gross margin", q["margin"]),
                            ("Operating expenses", q["opex"]),
                            ("Headcount", q["headcount"]),
                        ]
                    )
                }

## Commentary

COGS (cost of goods sold) stayed flat while hosting costs fell. The FPA (financial planning and
analysis) team publishes the detailed model to budget owners.
""",
            )
        )
    for year in (2024, 2025, 2026):
        rows = [
            [d, f"${rng.randint(4, 40)}.{rng.randint(0, 9)}M"]
            for d in ("Engineering", "Sales", "Marketing", "HR", "Finance", "Operations")
        ]
        docs.append(
            Doc(
                "finance",
                f"budget-fy{year}",
                f"Department budgets FY{year}",
                f"{year - 1}-12-10",
                f"Approved department budgets for fiscal year {year}.\n\n"
                + table(["Department", "Budget"], rows),
            )
        )
    docs += [
        Doc(
            "finance",
            "expense-policy",
            "Expense policy",
            "2026-01-20",
            f"""
Employees are reimbursed for reasonable business expenses with a receipt.

- **Daily meal limit:** {p["meal_limit"]}
- **Submission deadline:** {p["expense_deadline"]} after the expense
- **Approval threshold:** {p["approval_threshold"]}
- **Policy owner:** {fin[0]}

## Approvals

Expenses above the approval threshold need the budget owner's approval. AP (accounts payable)
pays approved claims in the next payroll run.
""",
        ),
        Doc(
            "finance",
            "travel-policy",
            "Travel policy",
            "2025-10-01",
            f"""
Book all travel through Orbit Travel. Economy class for flights under six hours.

- **Hotel limit:** $250 per night
- **Booking tool:** Orbit Travel
- **Policy owner:** {fin[1]}
""",
        ),
        Doc(
            "finance",
            "procurement-policy",
            "Procurement policy",
            "2025-12-05",
            f"""
Every purchase above $10,000 needs a PO (purchase order) before the vendor starts work.

- **PO threshold:** $10,000
- **Three quotes required above:** $50,000
- **Policy owner:** {fin[2]}
""",
        ),
        Doc(
            "finance",
            "signing-authority",
            "Signing authority matrix",
            "2026-02-20",
            "Who may sign contracts, by contract value.\n\n"
            + table(
                ["Contract value", "Signer"],
                [
                    ["Up to $50,000", "Department head"],
                    ["Up to $500,000", w.leaders["Chief Financial Officer"]],
                    ["Above $500,000", w.leaders["Chief Executive Officer"]],
                ],
            ),
        ),
        Doc(
            "finance",
            "month-end-close",
            "Month-end close",
            "2025-07-07",
            f"""
The books close on the fifth working day of each month.

- **Close owner:** {fin[3]}
- **Close day:** fifth working day
""",
        ),
    ]
    for v in w.vendors:
        docs.append(
            Doc(
                "finance",
                f"vendor-{v['slug']}",
                v["name"],
                v["updated"],
                f"""
{v["name"]} is a supplier to {COMPANY}. {
                    pick(
                        rng,
                        "The contract renews automatically.",
                        "Renewal needs a new PO (purchase order).",
                        "Finance reviews the spend every quarter.",
                    )
                }

{facts([("Contract owner", v["owner"]), ("Annual spend", v["spend"]), ("Renewal date", v["renewal"])])}
""",
            )
        )
    docs.append(glossary("finance", "Finance glossary", "2026-01-09"))
    return docs


def sales_docs(w: World) -> list[Doc]:
    rng = random.Random(f"{w.seed}-sales")
    sales = w.people["sales"]
    docs = []
    for a in w.accounts:
        docs.append(
            Doc(
                "sales",
                f"account-{a['slug']}",
                a["name"],
                a["updated"],
                f"""
{a["name"]} is {"an" if a["tier"][0] in "AEIOU" else "a"} {a["tier"]} customer in {a["region"]}. {
                    pick(
                        rng,
                        "They use the platform for warehouse operations.",
                        "They started with one site and expanded to five.",
                        "They joined after a competitive RFP (request for proposal).",
                    )
                }

{
                    facts(
                        [
                            ("Account executive", a["ae"]),
                            ("ARR", a["arr"]),
                            ("Renewal date", a["renewal"]),
                            ("Tier", a["tier"]),
                            ("Region", a["region"]),
                            ("Health", a["health"]),
                        ]
                    )
                }

## Next steps

{
                    pick(
                        rng,
                        "Schedule the QBR (quarterly business review) before renewal.",
                        "Run a POC (proof of concept) for the analytics add-on.",
                        "Introduce the new CSM (customer success manager).",
                    )
                }
""",
            )
        )
    docs += [
        Doc(
            "sales",
            "pricing",
            "Price list 2026",
            "2026-01-03",
            "List prices per year.\n\n"
            + table(
                ["Plan", "Price per site"],
                [["Starter", "$12,000"], ["Growth", "$30,000"], ["Enterprise", "$75,000"]],
            ),
        ),
        Doc(
            "sales",
            "territories",
            "Sales territories",
            "2026-01-06",
            "Regional sales leads.\n\n"
            + table(
                ["Region", "Regional lead"],
                [[r, sales[20 + i]] for i, r in enumerate(("EMEA", "North America", "APAC", "LATAM"))],
            ),
        ),
        Doc(
            "sales",
            "commission-plan",
            "Commission plan 2026",
            "2026-01-06",
            f"""
Account executives earn commission on ACV (annual contract value) booked.

- **Commission rate:** 9% of ACV
- **Accelerator above quota:** 1.5x
- **Plan owner:** {sales[25]}
""",
        ),
        Doc(
            "sales",
            "lead-handoff",
            "Lead handoff playbook",
            "2025-09-09",
            """
Marketing hands an MQL (marketing qualified lead) to sales development, who qualify it into an
SQL (sales qualified lead) within two working days.

- **Qualification deadline:** 2 working days
""",
        ),
        Doc(
            "sales",
            "discount-approval",
            "Discount approval",
            "2025-11-30",
            f"""
Discounts above 20% need deal desk approval.

- **Deal desk lead:** {sales[26]}
- **Maximum discount:** 35%
""",
        ),
    ]
    for i, industry in enumerate(("Logistics", "Retail", "Manufacturing", "Healthcare", "Energy")):
        docs.append(
            Doc(
                "sales",
                f"playbook-{slugify(industry)}",
                f"Sales playbook: {industry}",
                f"2025-1{i % 3}-0{i + 1}",
                f"""
How we sell to {industry.lower()} companies.

- **Playbook owner:** {sales[i]}
- **Typical sales cycle:** {rng.choice((3, 4, 6, 9))} months

## Discovery

Ask about their sites, their current tools and who signs. Offer a POC (proof of concept) only with
agreed success criteria.
""",
            )
        )
    docs.append(glossary("sales", "Sales glossary", "2026-01-07"))
    return docs
