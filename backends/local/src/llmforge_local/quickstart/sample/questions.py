"""The held-out question set: questions phrased differently from the generated pairs, each
with a short gold answer span, the document it comes from and who asks it.

``asked_by`` is the department of the person asking; ``visible_to_asker`` says whether a
department row filter lets that person see the source document (its department or "all").
The cross-department questions (visible False) are the ones a governed assistant must not
answer from the other department's documents.
"""

from __future__ import annotations

import datetime as dt

from llmforge_local.quickstart.sample.world import ACRONYMS, COMPANY, World


def _date_alias(date: str) -> list[str]:
    d = dt.date.fromisoformat(date)
    return [f"{d:%B} {d.day}, {d.year}", f"{d.day} {d:%B} {d.year}"]


def _money_alias(money: str) -> list[str]:
    return [money.replace("M", " million").replace("K", ",000")] if money[-1] in "MK" else []


def build_questions(w: World) -> list[dict]:
    qs: list[dict] = []

    def add(
        question: str,
        answer: str,
        doc_id: str,
        kind: str,
        aliases: list[str] | None = None,
        asked_by: str | None = None,
    ) -> None:
        department = doc_id.split("/")[0]
        asker = asked_by or (
            department if department != "all" else ("engineering", "hr", "finance", "sales")[len(qs) % 4]
        )
        qs.append(
            {
                "id": f"q{len(qs) + 1:03d}",
                "question": question,
                "answer": answer,
                "aliases": aliases or [],
                "department": department,
                "document_id": doc_id,
                "asked_by": asker,
                "visible_to_asker": department in (asker, "all"),
                "kind": kind,
            }
        )

    for i, p in enumerate(w.projects[:14]):
        doc = f"engineering/{p['slug']}"
        asks = [0, 1, 2, 3] if i == 0 else [i % 4]
        for a in asks:
            if a == 0:
                add(f"Who owns {p['name']}?", p["owner"], doc, "owner")
            elif a == 1:
                add(f"What is the current status of {p['name']}?", p["status"], doc, "status")
            elif a == 2:
                add(f"When is {p['name']} due to ship?", p["target"], doc, "date", _date_alias(p["target"]))
            else:
                add(
                    f"How much budget does {p['name']} have?",
                    p["budget"],
                    doc,
                    "amount",
                    _money_alias(p["budget"]),
                )
    for s in w.services[:4]:
        add(f"Who owns the {s['name']} service?", s["owner"], f"engineering/service-{s['name']}", "owner")
    for s in w.services[4:6]:
        add(
            f"What availability SLO does {s['name']} promise?",
            s["slo"],
            f"engineering/service-{s['name']}",
            "amount",
        )
    for acr, expansion in ACRONYMS["engineering"][4:7]:
        add(f"At {COMPANY}, what is {acr} short for?", expansion, "engineering/glossary", "acronym")

    p, hr, fin = w.policy, w.people["hr"], w.people["finance"]
    add(
        "How many days of PTO do full-time employees get each year?",
        p["pto_days"],
        "hr/pto-policy",
        "number",
        [f"{p['pto_days']} days"],
    )
    add("How many unused PTO days can be carried over?", p["carryover"], "hr/pto-policy", "number")
    add(
        "How many weeks of paid parental leave do parents get?",
        p["parental_weeks"],
        "hr/parental-leave",
        "number",
        [f"{p['parental_weeks']} weeks"],
    )
    add("How large is the yearly learning budget?", p["learning_budget"], "hr/learning-budget", "amount")
    add(
        "How long does a performance improvement plan last?",
        "60 days",
        "hr/performance-improvement",
        "number",
    )
    add("Who is the HR business partner for engineering?", hr[5], "hr/hrbp-assignments", "owner")
    for family, level, col in (
        ("Software Engineering", 4, "max"),
        ("Sales", 3, "min"),
        ("Data Science", 5, "max"),
    ):
        band = w.bands[family][level - 1]
        word = "maximum" if col == "max" else "minimum"
        add(
            f"What is the {word} salary for an L{level} in {family}?",
            band[col],
            f"hr/salary-bands-{family.lower().replace(' ', '-')}",
            "amount",
        )
    add("What does EAP stand for?", "employee assistance program", "hr/glossary", "acronym")

    for q in (w.quarters[10], w.quarters[12], w.quarters[7]):
        add(
            f"What revenue did {COMPANY} report for {q['name']}?",
            q["revenue"],
            f"finance/results-{q['slug']}",
            "amount",
            _money_alias(q["revenue"]),
        )
    add(
        f"What was the gross margin in {w.quarters[13]['name']}?",
        w.quarters[13]["margin"],
        f"finance/results-{w.quarters[13]['slug']}",
        "amount",
    )
    add(
        f"What was the headcount at the end of {w.quarters[14]['name']}?",
        str(w.quarters[14]["headcount"]),
        f"finance/results-{w.quarters[14]['slug']}",
        "number",
    )
    add("What is the daily meal limit when travelling?", p["meal_limit"], "finance/expense-policy", "amount")
    add(
        "How long do employees have to submit an expense?",
        p["expense_deadline"],
        "finance/expense-policy",
        "number",
    )
    add("Above what amount is a purchase order required?", "$10,000", "finance/procurement-policy", "amount")
    add("Who owns the month-end close?", fin[3], "finance/month-end-close", "owner")
    for v in w.vendors[:3]:
        add(f"Who owns the contract with {v['name']}?", v["owner"], f"finance/vendor-{v['slug']}", "owner")
    for v in w.vendors[3:5]:
        add(
            f"When does the {v['name']} contract renew?",
            v["renewal"],
            f"finance/vendor-{v['slug']}",
            "date",
            _date_alias(v["renewal"]),
        )
    add("What does COGS stand for?", "cost of goods sold", "finance/glossary", "acronym")

    for i, a in enumerate(w.accounts[:15]):
        doc = f"sales/account-{a['slug']}"
        if i % 3 == 0:
            add(f"Who is the account executive for {a['name']}?", a["ae"], doc, "owner")
        elif i % 3 == 1:
            add(f"What is the ARR of {a['name']}?", a["arr"], doc, "amount", _money_alias(a["arr"]))
        else:
            add(f"When is {a['name']} up for renewal?", a["renewal"], doc, "date", _date_alias(a["renewal"]))
    add("What commission rate do account executives earn?", "9%", "sales/commission-plan", "amount")
    add("Who is the regional sales lead for EMEA?", w.people["sales"][20], "sales/territories", "owner")
    add("What does QBR stand for?", "quarterly business review", "sales/glossary", "acronym")

    add(
        f"Who is the CEO of {COMPANY}?", w.leaders["Chief Executive Officer"], "all/company-overview", "owner"
    )
    add(f"Where is {COMPANY} headquartered?", p["hq"], "all/company-overview", "place")
    add(
        "How long must a password be?",
        p["password_len"],
        "all/information-security-policy",
        "number",
        [f"{p['password_len']} characters"],
    )
    add(
        "Who is the Chief Financial Officer?",
        w.leaders["Chief Financial Officer"],
        "all/leadership-team",
        "owner",
    )
    add(
        "On what date is the 2026 company day?",
        "2026-06-12",
        "all/holidays-2026",
        "date",
        _date_alias("2026-06-12"),
    )
    add("What does ELT stand for?", "executive leadership team", "all/company-glossary", "acronym")

    helix, band = w.projects[0], w.bands["Software Engineering"][3]
    add(
        "When will Project Helix ship?",
        helix["target"],
        "engineering/project-helix",
        "date",
        _date_alias(helix["target"]),
        asked_by="sales",
    )
    add(
        "What is the status of Project Helix?",
        helix["status"],
        "engineering/project-helix",
        "status",
        asked_by="finance",
    )
    add(
        "What is the top of the L4 Software Engineering salary band?",
        band["max"],
        "hr/salary-bands-software-engineering",
        "amount",
        asked_by="engineering",
    )
    add(
        "What is the minimum salary for an L2 in Finance?",
        w.bands["Finance"][1]["min"],
        "hr/salary-bands-finance",
        "amount",
        asked_by="finance",
    )
    add(
        f"How much revenue did {COMPANY} make in {w.quarters[15]['name']}?",
        w.quarters[15]["revenue"],
        f"finance/results-{w.quarters[15]['slug']}",
        "amount",
        asked_by="sales",
    )
    add(
        f"What is the ARR of {w.accounts[20]['name']}?",
        w.accounts[20]["arr"],
        f"sales/account-{w.accounts[20]['slug']}",
        "amount",
        asked_by="engineering",
    )
    add(
        f"Who owns the {w.services[8]['name']} service?",
        w.services[8]["owner"],
        f"engineering/service-{w.services[8]['name']}",
        "owner",
        asked_by="hr",
    )
    add(
        "How many weeks of parental leave are paid?",
        p["parental_weeks"],
        "hr/parental-leave",
        "number",
        asked_by="sales",
    )
    return qs
