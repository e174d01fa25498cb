"""Weights obey governance: per-department adapters, entitlement from lineage, routing, promotion.

Two departments, each with its own documents behind a department row filter; pairs made from
them carry the filter; one fine-tuning config trains one tiny-Llama adapter per department;
each principal is served only an adapter whose every training row it may read.
"""

from __future__ import annotations

import shutil

import pyarrow as pa
import pytest
from fixtures.generation import generator_config
from fixtures.train import MODEL_NAME, tiny_config

import llmforge
from llmforge.errors import ConfigError, DataError, ModelError, NotFoundError
from llmforge.governance import NotEntitledError, entitled, inherit_row_filter, route, training_lineage
from llmforge.pairs import pairs_table
from llmforge.tracking import PromotionRefused, Tracker

DOCS = "main.knowledge.documents"
PAIRS = "ml.llm_training.enterprise_instructions_v1"
ENG_DOC = "Dana Kim owns the Helix migration. The migration is on track. Cutover is on June 12."
HR_DOC = "Parental leave is 18 weeks at full pay. Erin Cho approves salary changes in March."


def governed(forge, departments=("engineering", "hr"), contents=(ENG_DOC, HR_DOC)) -> pa.Table:
    """Documents behind a department row filter, their pairs carrying it; returns the pairs."""
    cat = forge.catalog
    cat.add_principal("admin", groups=["admins"])
    cat.add_principal("eve", departments=["engineering"])
    cat.add_principal("harry", departments=["hr"])
    cat.add_principal("both", departments=["engineering", "hr"])
    cat.add_principal("nobody")
    docs = pa.table(
        {
            "document_id": [f"{d}/doc" for d in departments],
            "department": list(departments),
            "content": list(contents),
        }
    )
    table = forge.table(DOCS)
    table.create(docs, primary_key="document_id")
    cat.set_row_filter(
        DOCS, {"type": "department_membership", "column": "department", "exempt_groups": ["admins"]}
    )
    pairs = pairs_table(docs, kinds=("statement",))
    forge.table(PAIRS).create(pairs, primary_key="pair_id", sources=[f"table:{DOCS}@{table.version}"])
    assert inherit_row_filter(cat, PAIRS, pairs.column_names)["column"] == "department"
    for securable in ("main", "ml"):
        cat.grant("USE", securable, "account users")
    for schema in ("main.knowledge", "ml.llm_training"):
        cat.grant("SELECT", schema, "account users")
    return pairs


def per_department(**local) -> dict:
    cfg = tiny_config(max_steps=2, **local)
    cfg["evaluation"] = {"metrics": ["perplexity"]}
    cfg["training_data"]["split"] = 0.75
    cfg["llmforge"] = {"audiences": "departments"}
    return cfg


def no_versions(forge) -> bool:
    try:
        Tracker(forge.home).versions(MODEL_NAME)
    except NotFoundError:
        return True
    return False


def test_a_pairs_table_read_as_a_principal_shows_only_its_departments_pairs(forge):
    pairs = governed(forge)
    assert set(pairs.column("department").to_pylist()) == {"engineering", "hr"}
    eve = forge.table(PAIRS, user="eve").read()
    assert eve.num_rows > 0 and set(eve.column("department").to_pylist()) == {"engineering"}
    assert set(eve.column("document_id").to_pylist()) == {"engineering/doc"}
    assert forge.table(PAIRS, user="nobody").read().num_rows == 0
    assert forge.table(PAIRS, user="both").read().num_rows == pairs.num_rows


@pytest.mark.slow
def test_two_departments_train_two_adapters_and_each_principal_gets_only_its_own(forge, chat_model_dir):
    governed(forge)
    result = forge.finetune(per_department(), progress=False)
    assert set(result.adapters) == {"department:engineering", "department:hr"}
    assert result.aliases == {
        "department:engineering": "champion-engineering",
        "department:hr": "champion-hr",
    }
    eng, hr = result.model_version["department:engineering"], result.model_version["department:hr"]
    assert result.run_id.keys() == result.model_uri.keys() == set(result.adapters)
    tracker = forge.models
    lineage = {v: training_lineage(forge.catalog, tracker, MODEL_NAME, v) for v in (eng, hr)}
    # each adapter learned exactly its department's rows, read through the catalog's row filter
    assert lineage[eng].footprint[PAIRS]["columns"] == {"department": ["engineering"]}
    assert lineage[hr].footprint[PAIRS]["columns"] == {"department": ["hr"]}
    assert lineage[eng].tables == ((PAIRS, 0),)
    cat = forge.catalog
    assert entitled(cat, "eve", lineage[eng]) and not entitled(cat, "eve", lineage[hr])
    assert entitled(cat, "harry", lineage[hr]) and not entitled(cat, "harry", lineage[eng])
    assert not entitled(cat, "nobody", lineage[eng]) and entitled(cat, "admin", lineage[hr])
    # a member of both departments may read both; the adapter trained on more rows wins
    both = route(tracker, "both", MODEL_NAME)
    rows = {v: lineage[v].footprint[PAIRS]["rows"] for v in (eng, hr)}
    assert both.version == max((eng, hr), key=lambda v: (rows[v], v == eng))

    # the served generator routes by caller: several adapters loaded on one base, never merged
    served = llmforge.connect(
        "local",
        home=str(forge.home),
        user="admin",
        generator={"name": "local", "options": {"model": "tiny-random-llama", "routed_model": MODEL_NAME}},
    )
    gen = served.generator
    msgs = [{"role": "user", "content": "Who owns the Helix migration?"}]
    assert gen.chat(msgs, max_tokens=3, user="eve").model == f"models:/{MODEL_NAME}/{eng}"
    assert gen.chat(msgs, max_tokens=3, user="harry").model == f"models:/{MODEL_NAME}/{hr}"
    assert gen.chat_batch([msgs, msgs], max_tokens=3, user="eve")[1].model == f"models:/{MODEL_NAME}/{eng}"
    assert gen.chat(msgs, max_tokens=3, user="nobody").model == "tiny-random-llama"  # the base
    assert "".join(gen.stream(msgs, max_tokens=3, user="harry")) is not None
    m = gen.loaded()
    # two adapters kept beside the base (the engine's per-row LoRA bank; peft on the static path)
    assert len(m.engine.slots.loras.slots if m.engine else m.adapters) == 2
    # the base answers as the bare base model: adapters off, not merged into its weights
    plain = llmforge.connect(
        "local", home=str(forge.home), generator={"name": "local", "options": {"model": "tiny-random-llama"}}
    ).generator
    assert plain.chat(msgs, max_tokens=4).text == gen.chat(msgs, max_tokens=4, user="nobody").text

    refusing = llmforge.connect(
        "local",
        home=str(forge.home),
        user="admin",
        generator={"name": "local", "options": {"routed_model": MODEL_NAME, "model": "tiny-random-llama",
                                                "unentitled": "refuse"}},
    ).generator  # fmt: skip
    with pytest.raises(NotEntitledError, match="'nobody' is not entitled"):
        refusing.chat(msgs, max_tokens=3, user="nobody")

    # an alias that serves everyone refuses a version trained on restricted rows
    with pytest.raises(PromotionRefused, match="serves everyone"):
        tracker.promote(MODEL_NAME, eng, alias="champion")
    with pytest.raises(PromotionRefused, match="audience 'hr'"):
        tracker.promote(MODEL_NAME, eng, alias="champion-hr")
    assert tracker.resolve(f"models:/{MODEL_NAME}@champion-hr").version == hr

    # a base model that differs from the adapters' base, then a deleted adapter: clear errors
    other = llmforge.connect(
        "local",
        home=str(forge.home),
        user="admin",
        generator=generator_config(chat_model_dir, routed_model=MODEL_NAME),
    ).generator
    with pytest.raises(ModelError, match="trained on base model 'tiny-random-llama'"):
        other.chat(msgs, max_tokens=2, user="eve")
    shutil.rmtree(tracker.resolve(f"models:/{MODEL_NAME}/{hr}").path)
    with pytest.raises(NotFoundError, match="was deleted"):
        gen.chat(msgs, max_tokens=2, user="harry")
    tracker.client.delete_model_version(MODEL_NAME, eng)  # its folder stays; the version is gone
    with pytest.raises(NotFoundError, match="was deleted"):
        gen.chat(msgs, max_tokens=2, user="eve")


def test_bad_per_department_input_fails_before_anything_is_registered(forge):
    forge.catalog.add_principal("admin", groups=["admins"])
    forge.table(PAIRS).create(
        pa.table({"pair_id": ["a"], "prompt": ["Who owns Helix?"], "response": ["Dana Kim owns Helix."]}),
        primary_key="pair_id",
    )
    with pytest.raises(DataError, match="needs a 'department' column"):
        forge.finetune(per_department(), progress=False)
    forge.table(PAIRS).drop()
    forge.table(PAIRS).create(
        pa.table({"pair_id": ["a"], "prompt": ["Q?"], "response": ["A."], "department": ["hr"]}),
        primary_key="pair_id",
    )
    with pytest.raises(ConfigError, match="has no row filter"):
        forge.finetune(per_department(), progress=False)
    assert no_versions(forge)


def test_an_audience_with_no_readable_rows_fails_before_training(forge):
    governed(forge)
    cfg = per_department()
    cfg["llmforge"] = {"audiences": ["eve", "nobody"]}
    with pytest.raises(DataError, match=r"\['nobody'\] can read no row"):
        forge.finetune(cfg, progress=False)
    assert no_versions(forge)


def test_routing_a_model_that_does_not_exist_says_how_to_make_one(forge):
    forge.catalog.add_principal("eve", departments=["engineering"])
    with pytest.raises(NotFoundError, match="train one"):
        route(forge.models, "eve", "main.production.nothing")
    with pytest.raises(ConfigError, match="fallback"):
        route(forge.models, "eve", "main.production.nothing", fallback="maybe")


def test_generator_options_for_routing_are_checked(forge, chat_model_dir):
    with pytest.raises(DataError, match="exclude each other"):
        _ = llmforge.connect(
            "local",
            home=str(forge.home),
            generator=generator_config(chat_model_dir, adapter="x", routed_model=MODEL_NAME),
        ).generator
    with pytest.raises(DataError, match="unentitled"):
        _ = llmforge.connect(
            "local", home=str(forge.home), generator=generator_config(chat_model_dir, unentitled="maybe")
        ).generator
