"""The facts of Acme Dynamics, a fictional company, drawn from one seeded RNG.

Everything the documents and the question set say comes from the :class:`World` built
here, so a question's gold answer is, by construction, the span written in its document.
A few facts are pinned (Project Helix, the CEO) so docs and examples can quote them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

COMPANY = "Acme Dynamics"
FIRST = [
    "Dana",
    "Priya",
    "Marcus",
    "Elena",
    "Tomas",
    "Aisha",
    "Jonah",
    "Mei",
    "Rafael",
    "Ingrid",
    "Kofi",
    "Sofia",
    "Noah",
    "Yuki",
    "Omar",
    "Leila",
    "Victor",
    "Hana",
    "Samuel",
    "Chloe",
    "Mateo",
    "Nadia",
    "Felix",
    "Zara",
    "Hugo",
    "Amara",
    "Lars",
    "Wen",
    "Diego",
    "Freya",
    "Idris",
    "Maya",
    "Anton",
    "Rosa",
    "Kenji",
    "Talia",
    "Emeka",
    "Greta",
    "Ravi",
    "Lucia",
    "Bruno",
    "Sana",
    "Oskar",
    "Imani",
    "Pavel",
    "Lena",
    "Tariq",
    "Nora",
]
LAST = [
    "Kim",
    "Patel",
    "Okafor",
    "Novak",
    "Berg",
    "Rahman",
    "Castillo",
    "Chen",
    "Moreau",
    "Lindqvist",
    "Mensah",
    "Rossi",
    "Fischer",
    "Tanaka",
    "Haddad",
    "Sato",
    "Alvarez",
    "Dubois",
    "Nakamura",
    "Osei",
    "Kowalski",
    "Silva",
    "Jensen",
    "Weber",
    "Costa",
    "Ivanova",
    "Ahmed",
    "Park",
    "Larsen",
    "Romero",
    "Schmidt",
    "Bauer",
    "Nguyen",
    "Duarte",
    "Hughes",
    "Varga",
    "Keller",
    "Mori",
    "Brooks",
    "Quinn",
]
CODENAMES = [
    "Aurora",
    "Basalt",
    "Cobalt",
    "Drift",
    "Ember",
    "Falcon",
    "Granite",
    "Harbor",
    "Iris",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Nimbus",
    "Onyx",
    "Pioneer",
    "Quartz",
    "Rook",
    "Sable",
    "Tundra",
    "Umber",
    "Vertex",
    "Willow",
    "Zephyr",
    "Atlas",
    "Beacon",
    "Cinder",
    "Echo",
    "Flint",
    "Glacier",
    "Halcyon",
    "Indigo",
    "Jade",
    "Keystone",
    "Lattice",
    "Nova",
    "Orion",
    "Polaris",
    "Quill",
]
PURPOSES = (
    "rewrites the billing ledger as an append-only event store",
    "moves customer search onto the new relevance engine",
    "replaces the nightly batch exports with streaming change feeds",
    "builds the self-service onboarding flow for new customers",
    "consolidates the three authentication services into one gateway",
    "adds multi-region failover to the order pipeline",
    "migrates the data warehouse to the lakehouse platform",
    "ships the mobile field-service app for technicians",
    "automates invoice matching for the finance team",
    "adds usage-based pricing to the subscription platform",
    "hardens the build pipeline with signed artifacts",
    "cuts p99 checkout latency below 300 milliseconds",
    "introduces forecasting models for warehouse inventory",
    "replaces the legacy reporting portal with embedded dashboards",
)
STATUSES = ("On track", "On track", "At risk", "Blocked", "Completed", "Paused")
SERVICES = [
    "ledger-api",
    "auth-gateway",
    "order-pipeline",
    "search-indexer",
    "billing-worker",
    "notification-hub",
    "inventory-sync",
    "report-builder",
    "pricing-engine",
    "identity-store",
    "file-vault",
    "event-bus",
    "metrics-collector",
    "feature-flags",
    "payments-router",
    "tax-calculator",
    "customer-profile",
    "shipping-quotes",
    "audit-log",
    "schema-registry",
]
CUSTOMER_A = [
    "Northwind",
    "Blue",
    "Harbor",
    "Crescent",
    "Summit",
    "Redwood",
    "Ironclad",
    "Silverline",
    "Greenfield",
    "Pinnacle",
    "Lakeside",
    "Brightwater",
    "Stonebridge",
    "Evergreen",
    "Granite",
    "Peak",
    "Oakmont",
    "Clearview",
    "Highland",
    "Riverbend",
    "Sunstone",
    "Westbrook",
    "Falconer",
    "Maplewood",
    "Coastal",
    "Northstar",
    "Bluestem",
    "Copperline",
    "Foxglove",
    "Harborview",
    "Kingsway",
    "Larkspur",
    "Meadowlark",
    "Oakridge",
    "Pinecrest",
    "Quayside",
    "Rosewood",
    "Seabright",
    "Thornbury",
    "Upland",
    "Valemont",
    "Whitecliff",
    "Yarrow",
    "Ashford",
    "Birchwood",
    "Cedarline",
    "Dunmore",
    "Elmstead",
    "Fairhaven",
]
CUSTOMER_B = (
    "Traders",
    "Logistics",
    "Health",
    "Foods",
    "Energy",
    "Manufacturing",
    "Retail",
    "Bank",
    "Insurance",
    "Telecom",
    "Airlines",
    "Pharma",
    "Media",
    "Hotels",
    "Motors",
)
VENDORS = (
    "CloudNine Hosting",
    "Papertrail Office Supply",
    "Beacon Payroll",
    "Lumen Analytics",
    "Sentry Shield Security",
    "Orbit Travel",
    "Quarry Legal Services",
    "Northbeam Telecom",
    "Atlas Facilities",
    "Brightside Catering",
    "Vector Recruiting",
    "Keystone Insurance",
    "Pixelworks Design",
    "Summit Training",
    "Ironbridge Consulting",
    "Tidewater Logistics",
    "Meridian Software",
    "Cobalt Devices",
    "Harbor Print",
    "Evergreen Cleaning",
)
FAMILIES = (
    "Software Engineering",
    "Data Science",
    "Product Management",
    "Design",
    "Sales",
    "Customer Success",
    "Finance",
    "Human Resources",
    "Legal",
    "Marketing",
    "IT",
    "Operations",
)
ACRONYMS = {
    "engineering": [
        ("SLO", "service level objective"),
        ("SLA", "service level agreement"),
        ("RCA", "root cause analysis"),
        ("ADR", "architecture decision record"),
        ("CAB", "change advisory board"),
        ("MTTR", "mean time to recovery"),
        ("PRD", "product requirements document"),
        ("CI", "continuous integration"),
        ("EOL", "end of life"),
        ("SRE", "site reliability engineering"),
    ],
    "hr": [
        ("PTO", "paid time off"),
        ("HRBP", "human resources business partner"),
        ("PIP", "performance improvement plan"),
        ("ERG", "employee resource group"),
        ("EAP", "employee assistance program"),
        ("OKR", "objectives and key results"),
    ],
    "finance": [
        ("ARR", "annual recurring revenue"),
        ("COGS", "cost of goods sold"),
        ("PO", "purchase order"),
        ("AP", "accounts payable"),
        ("FPA", "financial planning and analysis"),
        ("EBITDA", "earnings before interest taxes depreciation and amortization"),
    ],
    "sales": [
        ("QBR", "quarterly business review"),
        ("MQL", "marketing qualified lead"),
        ("SQL", "sales qualified lead"),
        ("ACV", "annual contract value"),
        ("POC", "proof of concept"),
        ("RFP", "request for proposal"),
        ("CSM", "customer success manager"),
    ],
    "all": [
        ("ELT", "executive leadership team"),
        ("MFA", "multi-factor authentication"),
        ("WFH", "work from home"),
    ],
}


def _money(rng: random.Random, lo: float, hi: float) -> str:
    value = rng.uniform(lo, hi)
    return f"${value / 1e6:.1f}M" if value >= 1e6 else f"${round(value / 1e3)}K"


def _date(rng: random.Random, years: tuple[int, ...]) -> str:
    return f"{rng.choice(years)}-{rng.randint(1, 12):02d}-{rng.choice((1, 15, 28)):02d}"


@dataclass
class World:
    seed: int
    people: dict[str, list[str]] = field(default_factory=dict)
    leaders: dict[str, str] = field(default_factory=dict)
    projects: list[dict] = field(default_factory=list)
    services: list[dict] = field(default_factory=list)
    accounts: list[dict] = field(default_factory=list)
    vendors: list[dict] = field(default_factory=list)
    quarters: list[dict] = field(default_factory=list)
    bands: dict[str, list[dict]] = field(default_factory=dict)
    policy: dict[str, str] = field(default_factory=dict)


def build_world(seed: int) -> World:
    rng = random.Random(seed)
    w = World(seed)
    names = [f"{first} {last}" for first in FIRST for last in LAST]
    rng.shuffle(names)
    for pinned in ("Dana Kim", "Marcus Okafor"):
        names.remove(pinned)
    for i, dept in enumerate(("engineering", "hr", "finance", "sales")):
        w.people[dept] = names[i * 30 : (i + 1) * 30]
    w.people["engineering"][0] = "Dana Kim"
    w.leaders = {
        "Chief Executive Officer": "Marcus Okafor",
        "Chief Financial Officer": names[130],
        "Chief Technology Officer": names[131],
        "Chief People Officer": names[132],
        "Chief Revenue Officer": names[133],
        "Chief Information Security Officer": names[134],
    }
    for i, code in enumerate(["Helix"] + list(CODENAMES)):
        w.projects.append(
            {
                "name": f"Project {code}",
                "slug": f"project-{code.lower()}",
                "owner": rng.choice(w.people["engineering"][1:]),
                "status": rng.choice(STATUSES),
                "target": _date(rng, (2026, 2027)),
                "budget": _money(rng, 2e5, 6e6),
                "purpose": PURPOSES[i % len(PURPOSES)],
                "team": rng.randint(3, 14),
                "sponsor": rng.choice(list(w.leaders.values())),
                "updated": _date(rng, (2025, 2026)),
            }
        )
    w.projects[0].update(
        owner="Dana Kim", status="At risk", target="2026-09-30", budget="$2.4M", purpose=PURPOSES[0], team=9
    )
    for name in SERVICES:
        w.services.append(
            {
                "name": name,
                "owner": rng.choice(w.people["engineering"]),
                "slo": rng.choice(("99.9%", "99.95%", "99.5%", "99.99%")),
                "tier": rng.choice(("Tier 1", "Tier 2", "Tier 3")),
                "rotation": f"{name}-primary",
                "updated": _date(rng, (2025, 2026)),
                "deps": rng.sample([s for s in SERVICES if s != name], 2),
            }
        )
    customers = [f"{a} {b}" for a in CUSTOMER_A for b in CUSTOMER_B]
    rng.shuffle(customers)
    for name in sorted(set(customers[:60]))[:56]:
        w.accounts.append(
            {
                "name": name,
                "slug": name.lower().replace(" ", "-"),
                "ae": rng.choice(w.people["sales"]),
                "arr": _money(rng, 5e4, 3e6),
                "renewal": _date(rng, (2026, 2027)),
                "tier": rng.choice(("Enterprise", "Mid-market", "SMB")),
                "region": rng.choice(("EMEA", "North America", "APAC", "LATAM")),
                "health": rng.choice(("Green", "Green", "Yellow", "Red")),
                "updated": _date(rng, (2025, 2026)),
            }
        )
    for name in VENDORS:
        w.vendors.append(
            {
                "name": name,
                "slug": name.lower().replace(" ", "-"),
                "owner": rng.choice(w.people["finance"]),
                "spend": _money(rng, 3e4, 2e6),
                "renewal": _date(rng, (2026, 2027)),
                "updated": _date(rng, (2025, 2026)),
            }
        )
    revenue = 31.0
    for year in (2023, 2024, 2025, 2026):
        for q in range(1, 5):
            revenue *= rng.uniform(1.01, 1.07)
            w.quarters.append(
                {
                    "name": f"Q{q} {year}",
                    "slug": f"q{q}-{year}",
                    "revenue": f"${revenue:.1f}M",
                    "margin": f"{rng.uniform(61, 74):.1f}%",
                    "opex": f"${revenue * rng.uniform(0.55, 0.7):.1f}M",
                    "headcount": 380 + 14 * len(w.quarters) + rng.randint(0, 9),
                    "updated": f"{year + (q == 4)}-{(q * 3 + 1) % 12 or 12:02d}-20",
                }
            )
    for family in FAMILIES:
        base = rng.randint(62, 95) * 1000
        w.bands[family] = [
            {
                "level": f"L{lv}",
                "min": f"${base * 1.22 ** (lv - 1):,.0f}",
                "max": f"${base * 1.22 ** (lv - 1) * 1.35:,.0f}",
            }
            for lv in range(1, 8)
        ]
    w.policy = {
        "pto_days": str(rng.choice((22, 25, 27))),
        "carryover": str(rng.choice((5, 8, 10))),
        "parental_weeks": str(rng.choice((16, 18, 20))),
        "meal_limit": f"${rng.choice((60, 75, 90))}",
        "expense_deadline": f"{rng.choice((30, 45, 60))} days",
        "password_len": str(rng.choice((12, 14, 16))),
        "learning_budget": f"${rng.choice((1500, 2000, 2500)):,}",
        "approval_threshold": f"${rng.choice((2500, 5000, 10000)):,}",
        "hq": "Rotterdam",
    }
    return w
