"""The continuous engine on packed weights and the fused CPU kernels: the plain path's numbers
where they promise them, float32's precision bounds where they round otherwise (the kernels'
elementwise ops, int8 weights, decode attention)."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
from fixtures.engine import PROMPTS, alone, engine, lora, seq


def _packed(model):
    """Skip where this CPU's oneDNN has no bf16 matmul (the engine keeps the plain path there)."""
    import torch
    from llmforge_local.engine_packed import Packed

    if Packed.build(model, "cpu", torch.bfloat16) is None:
        pytest.skip("this CPU's oneDNN has no bf16 matmul; the engine keeps the plain path")


def _kernels(model, ready: str | None = None, why: str = ""):
    """The fused kernels' ops for the packed path (skipping without a compiler), and with
    ``ready`` one of their ``*_ready`` checks that must pass (skipping with ``why`` otherwise)."""
    from llmforge_local import kernels

    _packed(model)
    if shutil.which("g++") is None:
        pytest.skip("no C++ compiler to build the kernels with")
    ops = kernels.load()
    assert ops is not None, kernels.why_off()
    if ready and not getattr(ops, ready)():
        pytest.skip(why)
    return ops


def test_packed_bf16_weights_give_the_plain_paths_numbers_with_mixed_adapters(chat_model_dir, tmp_path):
    """On a CPU with oneDNN bf16 the engine runs from packed, fused weights; with PyTorch's
    elementwise ops around them every logit equals the unpacked path's (and HF ``generate``'s
    tokens), adapters included."""
    import torch
    from llmforge_local.engine_model import SlotModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(chat_model_dir, dtype=torch.bfloat16).eval()
    tok = AutoTokenizer.from_pretrained(chat_model_dir)
    _packed(model)
    attn = lora(chat_model_dir, tmp_path / "attn", ["q_proj", "v_proj", "o_proj"], 4, 1)
    mlp = lora(chat_model_dir, tmp_path / "mlp", ["gate_proj", "up_proj", "down_proj", "k_proj"], 8, 2)
    packed, plain = SlotModel(model, "cpu", kernels=False), SlotModel(model, "cpu", pack=False)
    prompts = [tok(PROMPTS[0])["input_ids"]] * 3  # one prompt: the rows differ by adapter alone
    rows = [m.loras.slot(a) for m in (packed, plain) for a in (None, attn, mlp)][:3]
    with torch.inference_mode():
        a, b = packed.prefill(prompts, 0, rows), plain.prefill(prompts, 0, rows)
        assert packed.packed is not None and plain.packed is None
        assert torch.equal(a, b)
        assert not torch.equal(a[0], a[1]) and not torch.equal(a[0], a[2])  # the adapters act
        lengths = [len(p) for p in prompts]
        for _ in range(4):
            nxt = a.argmax(-1).tolist()
            a, b = packed.decode(nxt, lengths, rows), plain.decode(nxt, lengths, rows)
            assert torch.equal(a, b)
            lengths = [n + 1 for n in lengths]
    e = engine(model, tok, fused_kernels=False)  # the kernels' numbers: the test below
    seqs = [e.submit(seq(tok, p, 10)) for p in PROMPTS]
    for s, p in zip(seqs, PROMPTS, strict=True):
        assert s.wait().tokens == alone(model, tok, p, 10)
    assert e.slots.packed is not None and e.slots.kernels is None


def test_the_engine_with_kernels_keeps_bf16_precision_with_mixed_adapters(chat_model_dir, tmp_path):
    """Against float32, the kernels' logits are as close as PyTorch's own bf16 path, adapters and
    the prefix cache included; greedy tokens agree wherever bf16 can tell them apart."""
    import copy

    import torch
    from llmforge_local.engine_model import SlotModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(chat_model_dir, dtype=torch.bfloat16).eval()
    _kernels(model)
    tok = AutoTokenizer.from_pretrained(chat_model_dir)
    reference = copy.deepcopy(model).float()
    attn = lora(chat_model_dir, tmp_path / "attn", ["q_proj", "v_proj", "o_proj"], 4, 1)
    mlp = lora(chat_model_dir, tmp_path / "mlp", ["gate_proj", "up_proj", "down_proj"], 8, 2)
    models = {
        "kernels": SlotModel(model, "cpu", prefix_tokens=256),
        "torch": SlotModel(model, "cpu", kernels=False),
        "f32": SlotModel(reference, "cpu"),
    }
    prompts = [tok(p)["input_ids"] for p in PROMPTS[:3]]
    with torch.inference_mode():
        rows = {k: [m.loras.slot(a) for a in (None, attn, mlp)] for k, m in models.items()}
        out = {k: m.prefill(prompts, 0, rows[k]).float() for k, m in models.items()}
        assert models["kernels"].kernels is not None and models["torch"].kernels is None
        calls = Counter()
        models["kernels"].kernels = _Counting(models["kernels"].kernels, calls)
        _decode_near_f32(models, out, prompts, rows, "kernels", "torch", 1.5, 1e-4)
    layers = len(model.model.layers)  # every decode step ran each layer's steps as kernels
    assert calls == {
        "rms": 4 * (2 * layers + 1),
        "rope_": 4 * layers,
        "silu_mul": 4 * layers,
        "cache_write_": 4 * layers,
    }


def _decode_near_f32(models, out, prompts, rows, tested, base, factor, floor, steps=4):
    """From the prefill logits ``out``, ``steps`` decode steps of float32's greedy tokens in every
    model; before each, ``tested``'s mean logit error against ``f32`` within ``factor`` times
    ``base``'s (plus ``floor``), and its top token float32's wherever float32's margin is more
    than four times ``tested``'s largest error."""
    import torch

    lengths = [len(p) for p in prompts]
    for _ in range(steps):
        err = {k: (out[k] - out["f32"]).abs().mean().item() for k in (tested, base)}
        assert err[tested] <= factor * err[base] + floor, err
        top2 = out["f32"].topk(2, dim=-1).values
        clear = (top2[:, 0] - top2[:, 1]) > 4 * (out[tested] - out["f32"]).abs().max()
        assert torch.equal(out[tested].argmax(-1)[clear], out["f32"].argmax(-1)[clear])
        nxt = out["f32"].argmax(-1).tolist()
        out = {k: m.decode(nxt, lengths, rows[k]).float() for k, m in models.items()}
        lengths = [n + 1 for n in lengths]


class _Counting:
    def __init__(self, ops, calls):
        self.ops, self.calls = ops, calls

    def __getattr__(self, name):
        op = getattr(self.ops, name)
        return lambda *a: self.calls.update([name]) or op(*a)


@pytest.mark.parametrize(("scheme", "ready"), [("int8", "q8_ready"), ("w8a8", "a8_ready")])
def test_int8_weights_stay_near_float32_with_mixed_adapters(chat_model_dir, tmp_path, scheme, ready):
    """``quantize: int8`` and ``w8a8``: every packed projection and the LM head int8, run by the
    AMX kernels; the logits within twice bf16's own distance from float32 (``w8a8`` rounding the
    inputs too), adapters and the prefix cache included, and greedy tokens agree wherever the
    rounding cannot tip them."""
    import copy

    import torch
    from llmforge_local.engine_model import SlotModel
    from llmforge_local.engine_packed import Q8
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(chat_model_dir, dtype=torch.bfloat16).eval()
    ops = _kernels(model, ready, f"this CPU has no AMX for it: quantize: {scheme} keeps bf16 weights here")
    tok = AutoTokenizer.from_pretrained(chat_model_dir)
    attn = lora(chat_model_dir, tmp_path / "attn", ["q_proj", "v_proj", "o_proj"], 4, 1)
    mlp = lora(chat_model_dir, tmp_path / "mlp", ["gate_proj", "up_proj", "down_proj"], 8, 2)
    models = {
        "int8": SlotModel(model, "cpu", prefix_tokens=256, quantize=scheme),
        "bf16": SlotModel(model, "cpu"),
        "f32": SlotModel(copy.deepcopy(model).float(), "cpu"),
    }
    prompts = [tok(p)["input_ids"] for p in PROMPTS[:3]]
    with torch.inference_mode():
        rows = {k: [m.loras.slot(a) for a in (None, attn, mlp)] for k, m in models.items()}
        out = {k: m.prefill(prompts, 0, rows[k]).float() for k, m in models.items()}
        packed = models["int8"].packed
        weights = [*(w for layer in packed.layers for w in layer.values()), packed.head]
        op = getattr(ops, f"{'a8' if scheme == 'w8a8' else 'q8'}_linear")
        assert all(isinstance(w, Q8) and w.linear == op for w in weights)
        assert not any(isinstance(w, Q8) for w in models["bf16"].packed.layers[0].values())
        _decode_near_f32(models, out, prompts, rows, "int8", "bf16", 2, 2e-4)
    e = engine(model, tok, quantize=scheme)  # the generator's path: requests run on int8 weights
    seqs = [e.submit(seq(tok, p, 6)) for p in PROMPTS]
    assert all(len(s.wait().tokens) > 0 for s in seqs)
    assert isinstance(e.slots.packed.head, Q8)


def test_decode_attention_by_the_kernels_keeps_bf16_precision():
    """A Llama whose heads the kernels' decode attention serves (head_dim 32, two query heads per
    kv head): every decode step's logits as close to float32 as PyTorch's SDPA path, and the
    kernel does run."""
    import copy

    import torch
    from llmforge_local.engine_model import SlotModel
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=320,
        max_position_embeddings=256,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    _kernels(model, "attend_ready", "this CPU has no avx512-bf16: decode attention stays SDPA")
    models = {
        "kernels": SlotModel(model, "cpu"),
        "sdpa": SlotModel(model, "cpu"),
        "f32": SlotModel(copy.deepcopy(model).float(), "cpu"),
    }
    prompts = [[(7 * r + 3 * j) % 300 + 1 for j in range(n)] for r, n in enumerate((5, 40, 17))]
    with torch.inference_mode():
        out = {k: m.prefill(prompts, 0, [0, 0, 0]).float() for k, m in models.items()}
        assert models["kernels"].decode_attend
        models["sdpa"].decode_attend = False
        calls = Counter()
        models["kernels"].kernels = _Counting(models["kernels"].kernels, calls)
        rows = {k: [0, 0, 0] for k in models}
        _decode_near_f32(models, out, prompts, rows, "kernels", "sdpa", 1.5, 1e-4, steps=6)
    assert calls["attend"] == 6 * cfg.num_hidden_layers
