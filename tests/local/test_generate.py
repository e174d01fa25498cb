from __future__ import annotations

import threading

import pytest
from fixtures.generation import generator_config

import llmforge
from llmforge.errors import ConfigError, DataError, NotFoundError

QUESTIONS = [
    "Who owns Project Helix?",
    "Hi",
    "Summarise the travel policy in two sentences, please, for the new starters in sales.",
    "What is 2 + 2?",
    "When does the office open?",
]


def convo(q: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": q}]


@pytest.fixture
def gen(home, chat_model_dir):
    forge = llmforge.connect(
        backend="local",
        home=str(home),
        user="admin",
        generator=generator_config(chat_model_dir, max_batch_size=2),
    )
    return forge.generator


def counts(c) -> tuple[int, int]:
    """Prompt and completion tokens (how many prompt tokens a cache served varies by order)."""
    return c.usage.prompt_tokens, c.usage.completion_tokens


def test_batching_gives_the_same_greedy_outputs_as_one_by_one(gen):
    single = [gen.chat(convo(q), max_tokens=10) for q in QUESTIONS]
    batched = gen.chat_batch([convo(q) for q in QUESTIONS], max_tokens=10)  # 3 device batches of <= 2
    assert [c.text for c in batched] == [c.text for c in single]
    assert [counts(c) for c in batched] == [counts(c) for c in single]
    assert len({c.text for c in single}) > 1  # the model really says different things
    assert all(c.text.strip() for c in single)


def test_usage_counts_prompt_and_completion_tokens(gen):
    c = gen.chat(convo(QUESTIONS[0]), max_tokens=7)
    tok = gen.loaded().tokenizer
    prompt = tok.apply_chat_template(convo(QUESTIONS[0]), add_generation_prompt=True, tokenize=False)
    assert c.usage.prompt_tokens == len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert c.usage.prompt_tokens == gen.count_prompt_tokens(convo(QUESTIONS[0]))
    assert (c.usage.completion_tokens, c.finish_reason) == (7, "length")
    assert c.usage.total_tokens == c.usage.prompt_tokens + 7
    assert c.model == str(gen.options.model)


def test_stop_strings_cut_the_text_and_stop_generation(gen):
    full = gen.chat(convo(QUESTIONS[0]), max_tokens=20)
    stop = full.text[6:9]
    assert stop and full.text.find(stop) == 6
    cut = gen.chat(convo(QUESTIONS[0]), max_tokens=20, stop=[stop, "never-appears"])
    assert cut.text == full.text[:6]
    assert cut.finish_reason == "stop"
    assert cut.usage.completion_tokens < 20
    # the tokens counted are exactly those that produced the text up to the stop string
    n = cut.usage.completion_tokens
    assert stop in gen.chat(convo(QUESTIONS[0]), max_tokens=n).text
    if n > 1:
        assert stop not in gen.chat(convo(QUESTIONS[0]), max_tokens=n - 1).text
    batched = gen.chat_batch([convo(QUESTIONS[0]), convo(QUESTIONS[1])], max_tokens=20, stop=stop)
    assert batched[0].text == cut.text
    assert batched[1].text == gen.chat(convo(QUESTIONS[1]), max_tokens=20, stop=stop).text


def test_streaming_concatenates_to_the_same_text(gen):
    for q, stop in [(QUESTIONS[0], None), (QUESTIONS[2], None)]:
        whole = gen.chat(convo(q), max_tokens=12, stop=stop)
        stream = gen.stream(convo(q), max_tokens=12, stop=stop)
        pieces = list(stream)
        assert len(pieces) > 1
        assert "".join(pieces) == whole.text
        assert counts(stream.completion) == counts(whole)
    full = gen.chat(convo(QUESTIONS[3]), max_tokens=16)
    stop = full.text[8:11]
    stream = gen.stream(convo(QUESTIONS[3]), max_tokens=16, stop=stop)
    assert "".join(stream) == full.text[:8]  # held-back text never leaks the stop string
    assert stream.completion.finish_reason == "stop"


def test_closing_a_stream_early_stops_generation(gen):
    stream = gen.stream(convo(QUESTIONS[0]), max_tokens=200)
    first = next(stream)
    stream.close()  # waits for the engine to drop the sequence at its next step
    c = stream.completion
    assert c.finish_reason == "cancelled"
    assert 1 <= c.usage.completion_tokens < 200  # what it produced, for the caller to charge
    assert c.text.startswith(first)
    assert gen.engine(gen.loaded()).running() == 0


def test_complete_batch_continues_raw_text(gen):
    [a, b] = gen.complete_batch(["Once upon a time", "The capital of"], max_tokens=5)
    tok = gen.loaded().tokenizer
    assert a.usage.prompt_tokens == len(tok("Once upon a time")["input_ids"])
    assert a.usage.completion_tokens == 5 and b.text
    with pytest.raises(DataError):
        gen.complete_batch([""])


def test_model_is_loaded_once_and_shared_across_threads(gen, home, chat_model_dir):
    other = llmforge.connect(
        backend="local", home=str(home), user="admin", generator=generator_config(chat_model_dir)
    ).generator
    assert other is not gen and other.loaded() is gen.loaded()
    expected = [gen.chat(convo(q), max_tokens=6).text for q in QUESTIONS]
    got: dict[int, str] = {}

    def ask(i: int) -> None:
        got[i] = other.chat(convo(QUESTIONS[i]), max_tokens=6).text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(QUESTIONS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[i] for i in range(len(QUESTIONS))] == expected


def test_static_engine_coalesces_concurrent_chats_into_device_batches(home, chat_model_dir):
    gen = llmforge.connect(
        backend="local",
        home=str(home),
        user="admin",
        generator=generator_config(chat_model_dir, max_batch_size=2, engine="static"),
    ).generator
    expected = [gen.chat(convo(q), max_tokens=3 + i).text for i, q in enumerate(QUESTIONS)]
    m, batcher = gen.loaded(), gen.batcher
    got: dict[int, str] = {}

    def ask(i: int) -> None:
        got[i] = gen.chat(convo(QUESTIONS[i]), max_tokens=3 + i).text

    batcher.batch_sizes.clear()
    with m.lock:  # the device is busy: every request has to queue
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(QUESTIONS))]
        for t in threads:
            t.start()
        while batcher.pending() + sum(batcher.batch_sizes) < len(QUESTIONS):
            threading.Event().wait(0.01)
    for t in threads:
        t.join()
    assert [got[i] for i in range(len(QUESTIONS))] == expected  # each cut to its own max_tokens
    assert sum(batcher.batch_sizes) == len(QUESTIONS)
    assert len(batcher.batch_sizes) < len(QUESTIONS)  # max_batch_size=2: pairs, not one by one


def test_pack_weights_false_keeps_the_plain_engine_and_the_same_answers(home, chat_model_dir):
    import torch
    from llmforge_local.engine_packed import Packed

    def run(pack: bool):
        g = llmforge.connect(  # a home of its own: a loaded model (and its engine) is shared per home
            backend="local",
            home=str(home / f"pack-{pack}"),
            user="admin",
            generator=generator_config(
                chat_model_dir, dtype="bfloat16", pack_weights=pack, fused_kernels=False
            ),
        ).generator
        texts = [g.chat(convo(q), max_tokens=8).text for q in QUESTIONS[:2]]
        return texts, g.engine(g.loaded()).slots.packed

    plain, none = run(False)
    packed, weights = run(True)
    assert none is None and plain == packed
    if weights is None:  # this CPU's oneDNN has no bf16 matmul: the engine keeps the plain path
        assert Packed.build(_tiny_bf16(chat_model_dir), "cpu", torch.bfloat16) is None
    for option in ("pack_weights", "fused_kernels"):
        with pytest.raises(DataError, match=f"{option} must be true or false"):
            _ = llmforge.connect(
                backend="local", home=str(home), generator={"name": "local", "options": {option: "no"}}
            ).generator


def test_the_quantize_option_is_checked(home):
    for options, match in (
        ({"quantize": "int4"}, "quantize must be one of"),
        ({"quantize": "int8", "engine": "static"}, "needs engine: continuous and pack_weights: true"),
        ({"quantize": "int8", "pack_weights": False}, "needs engine: continuous and pack_weights: true"),
        ({"quantize": "w8a8", "engine": "static"}, "needs engine: continuous and pack_weights: true"),
    ):
        with pytest.raises(DataError, match=match):
            _ = llmforge.connect(
                backend="local", home=str(home), generator={"name": "local", "options": options}
            ).generator


def test_the_prefix_cache_option_is_checked_and_reaches_the_engine(home, chat_model_dir):
    for bad in (-1, "lots", 1.5):
        with pytest.raises(DataError, match="prefix_cache_tokens"):
            _ = llmforge.connect(
                backend="local",
                home=str(home),
                generator={"name": "local", "options": {"prefix_cache_tokens": bad}},
            ).generator
    g = llmforge.connect(
        backend="local",
        home=str(home / "no-prefix-cache"),
        user="admin",
        generator=generator_config(chat_model_dir, prefix_cache_tokens=0),
    ).generator
    first = g.chat(convo(QUESTIONS[0]), max_tokens=4)
    again = g.chat(convo(QUESTIONS[0]), max_tokens=4)
    assert g.engine(g.loaded()).slots.prefix.capacity == 0
    assert (first.text, first.usage.cached_tokens, again.usage.cached_tokens) == (again.text, 0, 0)


def _tiny_bf16(folder):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)


def test_bad_input_is_refused_with_clear_errors(gen):
    with pytest.raises(DataError, match="non-empty list"):
        gen.chat([])
    with pytest.raises(DataError, match=r"messages\[0\]"):
        gen.chat([{"role": "robot", "content": "hi"}])
    with pytest.raises(DataError, match="max_tokens"):
        gen.chat(convo("hi"), max_tokens=0)
    with pytest.raises(DataError, match="context"):
        gen.chat(convo("hi"), max_tokens=5000)
    with pytest.raises(DataError, match="temperature"):
        gen.chat(convo("hi"), temperature=-1)


def test_bad_options_are_refused(home):
    with pytest.raises(DataError, match="max_batch_size"):
        _ = llmforge.connect(
            backend="local", home=str(home), generator={"name": "local", "options": {"max_batch_size": 0}}
        ).generator
    with pytest.raises(ConfigError, match="allowed"):
        _ = llmforge.connect(
            backend="local", home=str(home), generator={"name": "local", "options": {"temprature": 1}}
        ).generator


def test_missing_adapter_folder_is_a_clear_error(home, chat_model_dir):
    g = llmforge.connect(
        backend="local",
        home=str(home),
        generator=generator_config(chat_model_dir, adapter=str(home / "nope")),
    ).generator
    with pytest.raises(NotFoundError, match="adapter folder"):
        g.chat(convo("hi"), max_tokens=2)


@pytest.fixture
def adapter_dir(chat_model_dir, tmp_path):
    """A LoRA adapter for the chat model whose weights really change its output."""
    import json

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(chat_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj", "o_proj"]))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:  # a fresh LoRA is a no-op (B = 0); give it weight
                p.normal_(0, 0.5)
    folder = tmp_path / "adapter"
    peft_model.save_pretrained(folder)
    (folder / "llmforge_model.json").write_text(json.dumps({"base_model": str(chat_model_dir)}))
    return folder


def test_peft_adapter_changes_the_output(home, chat_model_dir, adapter_dir):
    plain = llmforge.connect(
        backend="local", home=str(home), generator=generator_config(chat_model_dir)
    ).generator
    tuned = llmforge.connect(
        backend="local", home=str(home), generator=generator_config(chat_model_dir, adapter=str(adapter_dir))
    ).generator
    a, b = (g.chat(convo(QUESTIONS[0]), max_tokens=8).text for g in (plain, tuned))
    assert a != b
    assert tuned.model_name == f"{chat_model_dir}+adapter"


def test_registered_model_uri_loads_the_version_behind_the_alias(home, adapter_dir, chat_model_dir):
    from llmforge.tracking import Tracker

    forge = llmforge.connect(backend="local", home=str(home), user="admin")
    tracker = Tracker(forge.home, forge.catalog)
    with tracker.start_run("/test/generate") as run:
        run.log_artifacts(adapter_dir, "model")
    version = tracker.register("main.test.chat", run)
    tracker.promote("main.test.chat", version, gate={})
    by_uri = llmforge.connect(
        backend="local",
        home=str(home),
        generator={
            "name": "local",
            "options": {"adapter": "models:/main.test.chat@champion", "dtype": "float32"},
        },
    ).generator
    by_folder = llmforge.connect(
        backend="local", home=str(home), generator=generator_config(chat_model_dir, adapter=str(adapter_dir))
    ).generator
    c = by_uri.chat(convo(QUESTIONS[0]), max_tokens=8)
    assert c.text == by_folder.chat(convo(QUESTIONS[0]), max_tokens=8).text  # base model from the manifest
    assert c.model == f"models:/main.test.chat/{version}"
    missing = llmforge.connect(
        backend="local",
        home=str(home),
        generator={"name": "local", "options": {"adapter": "models:/main.test.chat@nope"}},
    ).generator
    with pytest.raises(NotFoundError, match="no alias @nope"):
        missing.chat(convo("hi"), max_tokens=2)


@pytest.mark.slow
def test_real_smollm2_knows_the_capital_of_france(home):
    forge = llmforge.connect(backend="local", home=str(home), user="admin")
    c = forge.generator.chat(convo("What is the capital of France?"), max_tokens=24)
    assert "Paris" in c.text
    assert c.usage.prompt_tokens > 5 and 0 < c.usage.completion_tokens <= 24
