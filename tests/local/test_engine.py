"""The continuous-batching engine: per-request results equal HF ``generate`` run alone, while
requests join, leave and are cancelled mid-flight, and rows of one batch use different LoRAs."""

from __future__ import annotations

import json
import threading

import pytest
from fixtures.engine import PROMPTS, alone, engine, lora, seq


@pytest.fixture(scope="module")
def tiny(chat_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(chat_model_dir, dtype="float32").eval()
    tok = AutoTokenizer.from_pretrained(chat_model_dir)
    return model, tok


def test_greedy_outputs_equal_hf_generate_per_request(tiny):
    model, tok = tiny
    e = engine(model, tok)
    lengths = [7, 30, 3, 18]
    seqs = [e.submit(seq(tok, p, n)) for p, n in zip(PROMPTS, lengths, strict=True)]
    for s, p, n in zip(seqs, PROMPTS, lengths, strict=True):
        s.wait()
        assert s.tokens == alone(model, tok, p, n)
        assert (len(s.tokens), s.finish) == (n, "length")
    assert max(e.step_sizes) > 1  # they really shared decode steps
    assert len({tuple(s.tokens[:3]) for s in seqs}) > 1


def test_a_short_request_finishes_while_a_long_one_runs(tiny):
    model, tok = tiny
    e = engine(model, tok)
    long = e.submit(seq(tok, PROMPTS[2], 300))
    short = e.submit(seq(tok, PROMPTS[0], 5))
    short.wait()
    assert not long.done.is_set() and len(long.tokens) < 300
    assert short.tokens == alone(model, tok, PROMPTS[0], 5)
    long.wait()
    assert long.tokens == alone(model, tok, PROMPTS[2], 300)


def test_a_request_added_mid_flight_joins_the_running_batch(tiny):
    model, tok = tiny
    e = engine(model, tok)
    long = e.submit(seq(tok, PROMPTS[2], 200))
    while len(long.tokens) < 10:
        threading.Event().wait(0.005)
    steps = e.slots.step
    calls = []
    e.slots.step = lambda *a, **k: calls.append((len(a[0]), len(a[3]))) or steps(*a, **k)
    late = e.submit(seq(tok, PROMPTS[1], 6))
    late.wait()
    assert not long.done.is_set()  # it did not wait for the running sequence to finish
    assert 2 in e.step_sizes
    # its prompt was prefilled in the long one's decode step: no pass of its own
    assert [c for c in calls if c[1]] == [(1, 1)]
    assert late.tokens == alone(model, tok, PROMPTS[1], 6)
    assert long.wait().tokens == alone(model, tok, PROMPTS[2], 200)


def test_cancelling_stops_a_sequence_and_reports_its_tokens(tiny):
    model, tok = tiny
    e = engine(model, tok)
    other = e.submit(seq(tok, PROMPTS[0], 40))
    victim = e.submit(seq(tok, PROMPTS[2], 500))
    while len(victim.tokens) < 5:
        threading.Event().wait(0.005)
    victim.cancel()
    victim.wait()
    assert victim.finish == "cancelled"
    assert 5 <= len(victim.tokens) < 500
    assert victim.tokens == alone(model, tok, PROMPTS[2], len(victim.tokens))  # what it really made
    assert other.wait().tokens == alone(model, tok, PROMPTS[0], 40)  # the batch went on
    assert e.running() == 0


def test_stop_strings_and_end_of_turn_end_rows_individually(tiny):
    model, tok = tiny
    e = engine(model, tok)
    full = tok.decode(alone(model, tok, PROMPTS[0], 20), skip_special_tokens=True)
    stop = full[6:9]
    s = seq(tok, PROMPTS[0], 20)
    s.stop = [stop]
    cut, free = e.submit(s), e.submit(seq(tok, PROMPTS[3], 20))
    cut.wait()
    assert cut.finish == "stop" and len(cut.tokens) < 20
    assert stop in tok.decode(cut.tokens, skip_special_tokens=True)
    assert free.wait().finish == "length" and len(free.tokens) == 20
    first = alone(model, tok, PROMPTS[1], 1)[0]
    e.eos_ids = frozenset({first})  # end-of-turn: the row's first token is its eos
    assert e.submit(seq(tok, PROMPTS[1], 20)).wait().tokens == [first]


def test_a_mixed_adapter_batch_equals_each_request_alone_with_its_adapter(tiny, chat_model_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model, tok = tiny
    attn = lora(chat_model_dir, tmp_path / "attn", ["q_proj", "v_proj", "o_proj"], 4, 1)
    # rank-stabilised scaling (alpha / sqrt(r)), as ``lora.use_rslora`` trains it
    mlp = lora(chat_model_dir, tmp_path / "mlp", ["gate_proj", "up_proj", "down_proj", "k_proj"], 8, 2, True)
    e = engine(model, tok)
    plan = [(None, PROMPTS[0]), (attn, PROMPTS[0]), (mlp, PROMPTS[0]), (attn, PROMPTS[2]), (None, PROMPTS[3])]
    seqs = [e.submit(seq(tok, p, 12, adapter=a)) for a, p in plan]
    for s in seqs:
        s.wait()
    assert max(e.step_sizes) >= 3  # adapters shared decode steps
    for (folder, prompt), s in zip(plan, seqs, strict=True):
        if folder is None:
            reference = model
        else:
            base = AutoModelForCausalLM.from_pretrained(chat_model_dir, dtype="float32")
            reference = PeftModel.from_pretrained(base, folder).eval()
        assert s.tokens == alone(reference, tok, prompt, 12), folder
    assert len({tuple(s.tokens) for s in seqs[:3]}) == 3  # each adapter really changed the output


def test_new_prompts_prefill_in_the_running_batchs_decode_step_with_their_own_adapters(
    tiny, chat_model_dir, tmp_path
):
    """A step that decodes the running rows and prefills new prompts is one forward pass; every
    row's logits equal a decode-only step and a prefill-only pass, adapters differing per row."""
    import torch
    from llmforge_local.engine_model import SlotModel

    model, tok = tiny
    attn = lora(chat_model_dir, tmp_path / "attn", ["q_proj", "v_proj", "o_proj"], 4, 1)
    mlp = lora(chat_model_dir, tmp_path / "mlp", ["gate_proj", "up_proj", "down_proj", "k_proj"], 8, 2, True)
    mixed, apart = SlotModel(model, "cpu"), SlotModel(model, "cpu")
    slot = {m: [m.loras.slot(a) for a in (None, attn, mlp)] for m in (mixed, apart)}
    running = [tok(p)["input_ids"] for p in PROMPTS[:2]]
    new = [tok(p)["input_ids"] for p in PROMPTS[2:]]  # two lengths: the padded prompt path
    calls = []
    forward = mixed._forward
    mixed._forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    with torch.inference_mode():
        for m in (mixed, apart):
            m.prefill(running, 0, [slot[m][1], slot[m][0]])
        lengths = [len(p) for p in running]
        calls.clear()
        out = mixed.step([5, 6], lengths, [slot[mixed][1], slot[mixed][0]], new, [slot[mixed][2], 0])
        assert len(calls) == 1 and out.shape[0] == 4
        dec = apart.decode([5, 6], lengths, [slot[apart][1], slot[apart][0]])
        pre = apart.prefill(new, 2, [slot[apart][2], 0])
        assert torch.allclose(out[:2], dec, atol=1e-4)
        assert torch.allclose(out[2:], pre, atol=1e-4)
        # the new rows' caches were written where their next decode step reads them
        nxt = [len(p) for p in new]
        both = mixed.decode(
            [1, 2, 3, 4], [n + 1 for n in lengths] + nxt, [slot[mixed][1], 0, slot[mixed][2], 0]
        )
        sep = apart.decode(
            [1, 2, 3, 4], [n + 1 for n in lengths] + nxt, [slot[apart][1], 0, slot[apart][2], 0]
        )
        assert torch.allclose(both, sep, atol=1e-4)


def test_prompts_of_different_lengths_prefill_together_as_they_would_alone(tiny):
    import torch
    from llmforge_local.engine_model import SlotModel

    model, tok = tiny
    prompts = [tok(p)["input_ids"] for p in PROMPTS]
    assert len({len(p) for p in prompts}) > 1
    together = SlotModel(model, "cpu")
    alone_ = SlotModel(model, "cpu")
    with torch.inference_mode():
        batch = together.prefill(prompts, 0, [0] * len(prompts))  # (N, V)
        for r, p in enumerate(prompts):
            assert torch.allclose(batch[r], alone_.prefill([p], 0, [0])[0], atol=1e-4)
        # the padding left in the shorter rows' slots never leaks into their next step
        step = together.decode([1] * len(prompts), [len(p) for p in prompts], [0] * len(prompts))
        for r, p in enumerate(prompts):
            alone_.prefill([p], 0, [0])
            assert torch.allclose(step[r], alone_.decode([1], [len(p)], [0])[0], atol=1e-4)


SHARED = (
    "You are the assistant of Northwind Logistics. Answer from the context only, cite the "
    "document you used, and say so plainly when the context does not hold the answer. "
)


def test_prompts_that_begin_alike_reuse_the_cached_beginning_and_answer_as_alone(
    tiny, chat_model_dir, tmp_path
):
    """The prefix cache: a later prompt starting like an earlier one prefills only its own end,
    yet every answer equals HF ``generate`` alone; the cache is kept apart per caller (salt) and
    per adapter, and never holds more than its capacity."""
    from llmforge_local.engine import Engine, Sequence
    from llmforge_local.engine_prefix import BLOCK
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model, tok = tiny
    e = Engine(model, tok, frozenset({tok.eos_token_id}), "cpu", 8, prefix_cache_tokens=256)
    cache = e.slots.prefix
    prompts = [SHARED + q for q in PROMPTS]
    ids = [tok(p)["input_ids"] for p in prompts]
    shared = len(tok(SHARED)["input_ids"]) - 1  # the last shared token may merge with the next
    assert shared >= 2 * BLOCK

    def run(prompt, salt=None, adapter=None, n=10):
        s = e.submit(Sequence(tok(prompt)["input_ids"], n, adapter=adapter, cache_salt=salt))
        return s

    first = run(prompts[0], "ann").wait()
    assert cache.hits == 0 and len(cache) == len(ids[0]) // BLOCK
    later = [run(p, "ann") for p in prompts[1:]]  # prefilled together, each from the cache
    for s, p in zip(later, prompts[1:], strict=True):
        assert s.wait().tokens == alone(model, tok, p, 10)
    assert first.tokens == alone(model, tok, prompts[0], 10)
    hits = cache.hits
    assert hits >= 3 * (shared // BLOCK) * BLOCK
    # the very same prompt again: all but its last token come from the cache
    again = run(prompts[2], "ann").wait()
    assert again.tokens == alone(model, tok, prompts[2], 10)
    assert cache.hits - hits == (len(ids[2]) - 1) // BLOCK * BLOCK
    # another caller, or another adapter, never reads these blocks
    hits = cache.hits
    assert run(prompts[1], "bob").wait().tokens == alone(model, tok, prompts[1], 10)
    attn = lora(chat_model_dir, tmp_path / "attn", ["q_proj", "v_proj", "o_proj"], 4, 1)
    adapted = run(prompts[1], "ann", adapter=attn).wait()
    assert cache.hits == hits
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(chat_model_dir), attn).eval()
    assert adapted.tokens == alone(peft, tok, prompts[1], 10)
    assert len(cache) <= 256 // BLOCK  # the least recently used blocks went


def test_cached_prompt_tokens_do_not_count_against_a_steps_prefill_budget(tiny, monkeypatch):
    from llmforge_local import engine as engine_mod
    from llmforge_local.engine import Engine, Sequence

    model, tok = tiny
    e = Engine(model, tok, frozenset({tok.eos_token_id}), "cpu", 8, prefix_cache_tokens=256)
    prompts = [tok(SHARED + q)["input_ids"] for q in PROMPTS[:3]]
    e.submit(Sequence(prompts[0], 2)).wait()  # caches the shared beginning
    # room for one whole prompt, or for all three once their shared beginning is cached
    monkeypatch.setattr(engine_mod, "PREFILL_BUDGET", max(len(p) for p in prompts) + 8)
    assert sum(len(p) for p in prompts) > engine_mod.PREFILL_BUDGET
    steps = []
    run = e.slots.step
    e.slots.step = lambda *a, **k: steps.append(len(a[3])) or run(*a, **k)
    with e._cond:  # all three wait before the scheduler looks
        seqs = [e.submit(Sequence(p, 2)) for p in prompts]
    for s in seqs:
        s.wait()
    assert steps[0] == 3  # one step prefilled all three
    assert all(s.cached_tokens >= 32 for s in seqs)


def test_the_prefix_cache_evicts_what_continues_a_beginning_before_the_beginning():
    import torch
    from llmforge_local.engine_prefix import BLOCK, PrefixCache

    cache = PrefixCache(3 * BLOCK)
    k = torch.arange(2 * 1 * 6 * BLOCK * 1, dtype=torch.float32).view(2, 1, 6 * BLOCK, 1)
    long = list(range(5 * BLOCK + 1))
    cache.store(long, 0, "ann", k, -k)  # five blocks, room for three: the first three stay
    got = cache.lookup(long, 0, "ann")
    assert len(got) == 3 == len(cache)
    assert torch.equal(torch.cat([b for b, _ in got], dim=2), k[:, :, : 3 * BLOCK])
    assert torch.equal(torch.cat([b for _, b in got], dim=2), -k[:, :, : 3 * BLOCK])
    assert cache.held(long, 0, "ann") == 3 * BLOCK
    assert cache.held(long, 0, "bob") == cache.held(long, 1, "ann") == 0
    other = [7, *long[1:]]  # a different first token: nothing of the other prompt applies
    assert cache.lookup(other, 0, "ann") == []
    cache.store(other, 0, "ann", k, k)  # three new blocks push out the old ones, last first
    assert cache.held(other, 0, "ann") == 3 * BLOCK and cache.held(long, 0, "ann") == 0


def test_a_zero_prefix_cache_keeps_nothing(tiny):
    model, tok = tiny
    e = engine(model, tok)  # the engine's own default: no prefix cache
    ids = tok(SHARED + PROMPTS[0])["input_ids"]
    for _ in range(2):
        e.submit(seq(tok, SHARED + PROMPTS[0], 3)).wait()
    assert len(e.slots.prefix) == 0 and e.slots.prefix.hits == 0 and len(ids) > 32


def test_sampled_rows_run_beside_greedy_ones_without_changing_them(tiny):
    import torch

    model, tok = tiny
    e = engine(model, tok)
    torch.manual_seed(0)
    hot = [seq(tok, PROMPTS[0], 15) for _ in range(3)]
    for s in hot:
        s.temperature, s.top_p = 1.5, 0.9
    greedy = seq(tok, PROMPTS[0], 15)
    for s in [*hot, greedy]:
        e.submit(s)
    for s in hot:
        assert len(s.wait().tokens) == 15 and all(0 <= t < len(tok) for t in s.tokens)
    assert greedy.wait().tokens == alone(model, tok, PROMPTS[0], 15)
    assert len({tuple(s.tokens) for s in hot} | {tuple(greedy.tokens)}) > 1  # sampling really samples


def test_an_unusable_adapter_fails_only_its_own_request(tiny, tmp_path):
    from llmforge.errors import ModelError

    model, tok = tiny
    e = engine(model, tok)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "adapter_config.json").write_text(json.dumps({"r": 4, "use_dora": True}))
    good = e.submit(seq(tok, PROMPTS[0], 30))
    broken = e.submit(seq(tok, PROMPTS[1], 5, adapter=str(bad)))
    with pytest.raises(ModelError, match="engine: static"):
        broken.wait()
    assert good.wait().tokens == alone(model, tok, PROMPTS[0], 30)


def test_freed_memory_goes_back_to_the_os_when_idle_and_under_steady_load(tiny, monkeypatch):
    import time

    from llmforge_local import engine as eng

    calls: list[int] = []
    monkeypatch.setattr(eng, "release_memory", lambda: calls.append(1))
    monkeypatch.setattr(eng, "TRIM_EVERY", 4)
    model, tok = tiny
    e = engine(model, tok)
    s = e.submit(seq(tok, PROMPTS[0], 12))
    s.wait()
    assert s.tokens == alone(model, tok, PROMPTS[0], 12)  # trimming never disturbs a sequence
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:  # 12 steps: every 4, then idle
        time.sleep(0.05)
    assert len(calls) >= 3


def test_release_memory_is_safe_to_call():
    from llmforge_local.engine import release_memory

    release_memory()
    release_memory()
