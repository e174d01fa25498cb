"""``method: lora_from_full``: the target layers train in full, the adapter is the truncated SVD
of their change, so it learns at full fine-tuning's rate and still serves as a LoRA adapter."""

from __future__ import annotations

import pytest
import torch
from fixtures.train import MODEL_NAME, tiny_config
from llmforge_local.models import TINY_SHAPE
from llmforge_local.train.lora import prepare, to_adapter
from transformers import LlamaConfig, LlamaForCausalLM

from llmforge.finetune_config import LoraOptions, load_finetune_config

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(vocab_size=96, **TINY_SHAPE)).eval()


def train_low_rank(model, rank: int, seed: int = 1) -> None:
    """Stand-in for training: every trainable weight moves by a random rank-``rank`` change."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                out, inp = p.shape
                p += 0.1 * torch.randn(out, rank, generator=gen) @ torch.randn(rank, inp, generator=gen)


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


IDS = torch.tensor([[1, 5, 9, 13, 40, 77, 2, 31]])


def test_only_the_adapters_layers_train_and_their_originals_are_kept():
    model = prepare(tiny_llama(), "lora_from_full", LoraOptions(r=4, alpha=8))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.split(".")[-2] in TARGETS for n in trainable)
    assert not model.model.embed_tokens.weight.requires_grad
    assert not model.model.layers[0].input_layernorm.weight.requires_grad
    assert len(model._llmforge_origin) == len(trainable) == 2 * len(TARGETS)


@pytest.mark.parametrize(("rank", "rslora"), [(4, False), (4, True), (48, False)])
def test_a_change_within_the_rank_becomes_an_adapter_that_reproduces_the_trained_model(rank, rslora):
    # rank 48 is wider than k_proj/v_proj (32 outputs): their extra directions are zeros
    lora = LoraOptions(r=rank, alpha=16, use_rslora=rslora)
    model = prepare(tiny_llama(), "lora_from_full", lora)
    before = logits(model, IDS)
    train_low_rank(model, rank=3)
    trained = logits(model, IDS)
    assert not torch.allclose(before, trained, atol=1e-3)

    peft_model, kept = to_adapter(model, lora)
    assert kept == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(logits(peft_model, IDS), trained, atol=1e-4)
    with peft_model.disable_adapter():  # the base weights are the originals again
        assert torch.allclose(logits(peft_model, IDS), before, atol=1e-5)
    assert not hasattr(peft_model.base_model.model, "_llmforge_origin")


def test_a_smaller_rank_keeps_the_best_approximation_of_each_change():
    lora = LoraOptions(r=1, alpha=2)
    model = prepare(tiny_llama(), "lora_from_full", lora)
    w0 = model.model.layers[0].mlp.down_proj.weight.detach().clone()
    train_low_rank(model, rank=3)
    delta = model.model.layers[0].mlp.down_proj.weight.detach() - w0
    s = torch.linalg.svdvals(delta)

    peft_model, kept = to_adapter(model, lora)
    assert 0 < kept < 1
    layer = peft_model.base_model.model.model.layers[0].mlp.down_proj
    with torch.no_grad():
        approx = layer.lora_B["default"].weight @ layer.lora_A["default"].weight * layer.scaling["default"]
        error = float(torch.linalg.norm(delta - approx))
    # Eckart-Young: the rank-1 truncation's error is the dropped singular values
    assert error == pytest.approx(float(s[1:].norm()), rel=1e-4)
    assert torch.equal(layer.base_layer.weight, w0)


def test_to_adapter_needs_a_model_prepared_for_it():
    with pytest.raises(ValueError, match="lora_from_full"):
        to_adapter(tiny_llama(), LoraOptions())


def test_options_that_do_not_apply_or_do_not_fit_are_clear_errors():
    from llmforge.errors import ConfigError

    with pytest.raises(ConfigError, match="lr_ratio.*method: lora"):
        prepare(tiny_llama(), "lora_from_full", LoraOptions(lr_ratio=16))
    with pytest.raises(ConfigError, match="not layers of this model"):
        prepare(tiny_llama(), "lora_from_full", LoraOptions(target_modules=("c_attn",)))


def test_the_config_accepts_the_method_everywhere_a_method_goes():
    cfg = tiny_config(method="lora_from_full")
    assert load_finetune_config(cfg).for_backend("local").method == "lora_from_full"
    cfg["method"] = "lora_from_full"
    assert load_finetune_config(cfg).method == "lora_from_full"


@pytest.mark.slow
def test_finetune_registers_an_adapter_that_the_engine_serves(train_forge):
    from mlflow.tracking import MlflowClient

    import llmforge
    from llmforge.tracking import Tracker

    forge = train_forge
    cfg = tiny_config(method="lora_from_full", lora={"r": 4, "alpha": 8})
    res = forge.finetune(cfg, progress=False)
    assert (res.model_dir / "adapter_config.json").exists()  # a LoRA adapter, not a full model
    assert 0 < res.metrics["adapter_energy_kept"] <= 1 + 1e-6
    logged = MlflowClient(Tracker(forge.home).uri).get_run(res.run_id).data.metrics
    assert logged["adapter_energy_kept"] == pytest.approx(res.metrics["adapter_energy_kept"])
    served = llmforge.connect(
        "local",
        home=str(forge.home),
        generator={"name": "local", "options": {"model": "tiny-random-llama", "adapter": res.model_uri}},
    ).generator
    out = served.chat([{"role": "user", "content": "Who owns Project Helix?"}], max_tokens=4)
    assert out.model == f"models:/{MODEL_NAME}/{res.model_version}" and out.usage.completion_tokens > 0
