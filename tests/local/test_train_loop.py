"""The training loop: learning, schedule, determinism, crash + resume, full disk."""

from __future__ import annotations

import errno

import pytest
from llmforge_local.train import data as D
from llmforge_local.train import loop as L
from llmforge_local.train.lora import prepare

from llmforge.finetune_config import LoraOptions


def batches(tok, n=12):
    import pyarrow as pa
    from fixtures.train import FACTS

    rows = [f for f in FACTS for _ in range(2)][:n]
    table = pa.table({"prompt": [p for p, _ in rows], "response": [r for _, r in rows]})
    ex = D.build_examples(table, tok, "INSTRUCTION_FINETUNE", 64)
    return D.make_batches(D.pack(ex, 64), 2, tok.pad_token_id)


def opts(**kw):
    base = dict(
        learning_rate=3e-3,
        total_steps=4,
        gradient_accumulation_steps=2,
        warmup_ratio=0.2,
        checkpoint_every=2,
        seed=7,
        progress=False,
    )
    return L.LoopOptions(**(base | kw))


def lora(model):
    return prepare(model, "lora", LoraOptions(r=4, alpha=8, dropout=0.1))


def test_full_finetune_lowers_the_loss(tiny_model, tiny_tokenizer):
    model = prepare(tiny_model, "full", LoraOptions())
    res = L.train(
        model,
        batches(tiny_tokenizer),
        opts(total_steps=8, learning_rate=5e-3, gradient_accumulation_steps=1, checkpoint_every=0),
    )
    assert [s for s, _ in res.losses] == list(range(1, 9))
    assert res.losses[-1][1] < res.losses[0][1] - 0.5
    assert res.tokens > 0 and res.loss_tokens > 0


def test_lora_trains_adapters_only(tiny_model, tiny_tokenizer):
    import torch

    model = lora(tiny_model)
    frozen = {k: v.clone() for k, v in model.named_parameters() if not v.requires_grad}
    L.train(model, batches(tiny_tokenizer), opts(total_steps=2, checkpoint_every=0))
    after = dict(model.named_parameters())
    assert all(torch.equal(v, after[k]) for k, v in frozen.items())
    assert all("lora_" in k for k, v in after.items() if v.requires_grad)


def test_lora_plus_gives_the_b_matrices_a_larger_learning_rate(tiny_model, tiny_tokenizer):
    model = prepare(tiny_model, "lora", LoraOptions(r=4, alpha=8, lr_ratio=16.0, use_rslora=True))
    assert model.peft_config["default"].use_rslora
    params = [p for p in model.parameters() if p.requires_grad]
    names = {id(p): n for n, p in model.named_parameters()}
    groups = L.param_groups(params, opts(learning_rate=1e-3))
    assert sum(len(g["params"]) for g in groups) == len(params)
    for g in groups:
        kinds = {"lora_B" if "lora_B" in names[id(p)] else "other" for p in g["params"]}
        assert len(kinds) == 1
        assert g["lr"] == pytest.approx(1.6e-2 if kinds == {"lora_B"} else 1e-3)
    assert any(g["lr"] == pytest.approx(1.6e-2) for g in groups)
    # the loop trains with these groups
    res = L.train(model, batches(tiny_tokenizer), opts(total_steps=2, checkpoint_every=0, learning_rate=1e-3))
    assert res.steps == 2


def test_warmup_then_cosine_and_linear_decay():
    f = L.lr_lambda(opts(total_steps=10, warmup_ratio=0.2))
    assert [f(0), f(1)] == [0.5, 1.0]
    assert f(2) == 1.0 and f(9) < 0.05 and f(5) < f(3)
    g = L.lr_lambda(opts(total_steps=10, warmup_ratio=0.0, lr_scheduler="linear"))
    assert g(0) == 1.0 and g(5) == pytest.approx(0.5)


def test_same_seed_same_run(tiny_home, tiny_tokenizer, tmp_path):
    from llmforge_local.models import TINY_MODEL, load_causal_lm

    runs = []
    for _ in range(2):
        import torch

        model, _ = load_causal_lm(TINY_MODEL, tiny_home, dtype=torch.float32)
        torch.manual_seed(0)
        runs.append(
            L.train(
                lora(model),
                batches(tiny_tokenizer),
                opts(total_steps=3, gradient_accumulation_steps=1, checkpoint_every=0),
            ).losses
        )
    assert runs[0] == runs[1]


def test_crash_then_resume_gives_the_uninterrupted_result(tiny_home, tiny_tokenizer, tmp_path):
    import torch
    from llmforge_local.models import TINY_MODEL, load_causal_lm

    def fresh():
        model, _ = load_causal_lm(TINY_MODEL, tiny_home, dtype=torch.float32)
        torch.manual_seed(0)  # same LoRA init, as the job seeds it
        return lora(model)

    data = batches(tiny_tokenizer)
    straight = fresh()
    ref = L.train(straight, data, opts(), tmp_path / "a")

    class Crash(Exception):
        pass

    def crash_at_3(step, loss, state):
        if step == 3:
            raise Crash

    with pytest.raises(Crash):
        L.train(fresh(), data, opts(), tmp_path / "b", on_step=crash_at_3)
    assert L.latest_checkpoint(tmp_path / "b").name == "step-000002"
    resumed_model = fresh()
    resumed = L.train(resumed_model, data, opts(), tmp_path / "b")
    assert resumed.resumed_from == 2
    assert resumed.losses == ref.losses
    want = dict(straight.named_parameters())
    for k, v in resumed_model.named_parameters():
        assert torch.equal(v, want[k]), k


def test_full_disk_during_checkpoint_keeps_the_earlier_one(tiny_model, tiny_tokenizer, tmp_path, monkeypatch):
    real = L.write_checkpoint_file
    calls = []

    def disk_full_on_second(state, path):
        calls.append(path)
        if len(calls) == 2:
            with open(path, "wb") as fh:  # a partial file, as a real full disk leaves
                fh.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(state, path)

    monkeypatch.setattr(L, "write_checkpoint_file", disk_full_on_second)
    with pytest.raises(L.CheckpointError, match="disk is full"):
        L.train(
            lora(tiny_model),
            batches(tiny_tokenizer),
            opts(total_steps=5, gradient_accumulation_steps=1),
            tmp_path,
        )
    good = L.latest_checkpoint(tmp_path)
    assert good.name == "step-000002"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000002"]  # no partial leftovers
    import torch

    assert torch.load(good / L.CKPT_FILE, weights_only=False)["step"] == 2


def test_the_loop_receives_the_hyper_parameters_whole():
    from dataclasses import fields

    from llmforge.errors import ConfigError
    from llmforge.finetune_config import TrainArgs

    args = TrainArgs(learning_rate=1e-3, warmup_ratio=0.2, seed=7)
    opts = L.LoopOptions.of(args, total_steps=3, progress=False)
    assert all(getattr(opts, f.name) == getattr(args, f.name) for f in fields(TrainArgs))
    with pytest.raises(ConfigError, match="total_steps must be >= 1"):
        L.LoopOptions.of(args, total_steps=0)
    with pytest.raises(ConfigError, match="learning_rate must be > 0"):
        L.LoopOptions(learning_rate=0, total_steps=3)
