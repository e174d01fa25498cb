"""The training fast paths compute exactly what the plain model computes.

Per-example attention over packed rows, the fused LoRA linear and the subnormal flush are
speed-ups only: each is checked here against the reference computation it replaces.
"""

from __future__ import annotations

import pytest
from llmforge_local.train import data as D
from llmforge_local.train.attention import NAME, SEGMENTS, _forward, segment_layout
from llmforge_local.train.lean import lean_lora
from llmforge_local.train.loop import loss_sum
from llmforge_local.train.lora import prepare

from llmforge.finetune_config import LoraOptions


def rows_of(*lengths_per_row: tuple[int, ...], width: int) -> object:
    """A (B, width) position tensor: each row packs examples of the given lengths, then pads."""
    import torch

    pos = []
    for lengths in lengths_per_row:
        row = [p for n in lengths for p in range(n)]
        pos.append(row + list(range(width - len(row))))
    return torch.tensor(pos)


def test_segment_layout_covers_every_token_once_and_groups_similar_lengths():
    import torch

    pos = rows_of((40, 3, 20), (7, 38), width=64)
    groups, scatter = segment_layout(pos)
    slots = torch.cat([g.view(n, s)[:, 0] for g, n, s in groups])
    # segment starts: 40 + 3 + 20 + pad 1 in row 0, 7 + 38 + pad 19 in row 1
    assert sorted(slots.tolist()) == [0, 40, 43, 63, 64, 71, 109]
    for g, n, s in groups:  # padding repeats a segment's last token: count distinct tokens
        real = [len(set(row.tolist())) for row in g.view(n, s)]
        assert s == -(-max(real) // 16) * 16 and min(real) >= 0.7 * max(real)
    flat = torch.cat([g for g, _, _ in groups])
    assert torch.equal(flat[scatter], torch.arange(pos.numel()))  # gather then scatter = identity


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_packed_attention_equals_block_diagonal_attention(kv_heads):
    """Against SDPA with the block-diagonal causal mask transformers builds for packed rows,
    with grouped-query heads and a padded second row."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    pos = rows_of((9, 5, 12), (20,), width=28)
    b, t, h, d = 2, 28, 4, 8
    q = torch.randn(b, h, t, d, dtype=torch.float64, requires_grad=True)
    k = torch.randn(b, kv_heads, t, d, dtype=torch.float64, requires_grad=True)
    v = torch.randn(b, kv_heads, t, d, dtype=torch.float64, requires_grad=True)

    class Attention(torch.nn.Module):
        pass

    module = Attention().train()
    out, _ = _forward(module, q, k, v, None, scaling=0.3, **{SEGMENTS: segment_layout(pos)})

    seg = torch.cat([torch.zeros(b, 1, dtype=torch.long), (pos[:, 1:] != pos[:, :-1] + 1).long()], 1).cumsum(
        1
    )
    mask = (seg[:, :, None] == seg[:, None, :]) & torch.ones(t, t, dtype=torch.bool).tril()
    rep = h // kv_heads
    ref = F.scaled_dot_product_attention(
        q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), attn_mask=mask[:, None], scale=0.3
    ).transpose(1, 2)
    assert out.shape == (b, t, h, d)
    assert torch.allclose(out, ref, atol=1e-10)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    assert all(torch.allclose(g, r, atol=1e-9) for g, r in zip(grads, ref_grads, strict=True))


def test_packed_attention_refuses_a_call_without_the_layout():
    import torch

    x = torch.zeros(1, 2, 4, 8)
    with pytest.raises(RuntimeError, match=SEGMENTS):
        _forward(torch.nn.Module(), x, x, x, None)


def test_model_attention_is_restored_after_a_training_forward(tiny_model):
    import torch

    before = tiny_model.config._attn_implementation
    batch = D.make_batches(D.unpacked([D.Example(list(range(5, 20)), list(range(5, 20)))]), 1, 0)[0]
    with torch.no_grad():
        loss_sum(tiny_model, batch)
    assert tiny_model.config._attn_implementation == before != NAME


def lora_model(tiny_model, dropout=0.0):
    import torch

    torch.manual_seed(3)
    model = prepare(tiny_model, "lora", LoraOptions(r=4, alpha=8, dropout=dropout))
    with torch.no_grad():  # peft starts B at zero; make the adapters matter
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    return model


def test_lean_lora_gives_peft_loss_and_gradients(tiny_model):
    import torch

    model = lora_model(tiny_model)
    ex = [D.Example(list(range(7, 7 + n)), list(range(7, 7 + n))) for n in (13, 6, 9)]
    batch = D.make_batches(D.pack(ex, 32), 1, pad_id=0)[0]

    def run():
        model.zero_grad(set_to_none=True)
        s, n = loss_sum(model, batch)
        (s / n).backward()
        return float(s.detach()), {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad}

    ref_loss, ref_grads = run()
    with lean_lora(model) as patched:
        loss, grads = run()
    assert patched == 7 * tiny_model.config.num_hidden_layers  # q k v o gate up down per layer
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    assert grads.keys() == ref_grads.keys()
    for k in grads:
        assert torch.allclose(grads[k], ref_grads[k], rtol=1e-4, atol=1e-7), k
    assert all("forward" not in vars(m) for m in model.modules())  # peft's forward is back


def test_lean_lora_leaves_dora_layers_to_peft(tiny_model):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_model, LoraConfig(r=4, target_modules=["q_proj"], use_dora=True))
    with lean_lora(model) as patched:
        assert patched == 0


def test_flush_denormals_reaches_every_worker_thread():
    """After the flush, subnormal inputs read as zero in a multi-threaded op, also in the
    slices that torch's OpenMP workers compute."""
    import torch
    from llmforge_local.models import flush_denormals

    if not flush_denormals():
        pytest.skip("this CPU cannot flush subnormals (not x86 with SSE)")
    x = torch.full((4_000_000,), 1e-39)  # subnormal in fp32, big enough to run in parallel
    assert torch.count_nonzero(x * 1.0) == 0


@pytest.mark.parametrize("weight_grad", [False, True])
def test_fused_head_cross_entropy_equals_logits_then_cross_entropy(weight_grad, monkeypatch):
    """Loss and gradients (hidden and, for full fine-tuning, the head weight) match the
    plain computation, across chunk boundaries."""
    import torch
    import torch.nn.functional as F
    from llmforge_local.train import head as H

    monkeypatch.setattr(H, "CHUNK", 7)  # 20 rows: three chunks, the last one short
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 50, bias=False).double().requires_grad_(weight_grad)
    hidden = torch.randn(20, 16, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 50, (20,))

    fused = H.head_cross_entropy(hidden, lin, target)
    (fused * 3).backward()
    got = hidden.grad.clone(), (lin.weight.grad.clone() if weight_grad else None)
    hidden.grad, lin.weight.grad = None, None
    plain = F.cross_entropy(lin(hidden), target, reduction="sum")
    (plain * 3).backward()
    assert float(fused.detach()) == pytest.approx(float(plain.detach()), rel=1e-12)
    assert torch.allclose(got[0], hidden.grad, atol=1e-12)
    if weight_grad:
        assert torch.allclose(got[1], lin.weight.grad, atol=1e-12)


def test_a_sliding_window_shorter_than_the_row_keeps_transformers_attention(tiny_model, monkeypatch):
    """Per-example causal attention would ignore a window: such models take transformers'
    masked path. (Llama itself ignores ``sliding_window``, so here both paths must agree.)"""
    import torch
    from llmforge_local.train import attention as A

    ex = [D.Example(list(range(7, 7 + n)), list(range(7, 7 + n))) for n in (13, 6)]
    batch = D.make_batches(D.pack(ex, 32), 1, pad_id=0)[0]
    width = batch["input_ids"].shape[1]
    layouts = []
    real = A.segment_layout
    monkeypatch.setattr(A, "segment_layout", lambda pos: layouts.append(pos) or real(pos))
    with torch.no_grad():
        packed, n = loss_sum(tiny_model, batch)
        assert len(layouts) == 1
        monkeypatch.setattr(tiny_model.config, "sliding_window", width - 1, raising=False)
        assert not A.supports(tiny_model.config, width)
        masked, m = loss_sum(tiny_model, batch)
        assert len(layouts) == 1  # the packed kernel was not used
    assert n == m and float(masked) == pytest.approx(float(packed), rel=1e-5)
    monkeypatch.setattr(tiny_model.config, "sliding_window", width, raising=False)
    assert A.supports(tiny_model.config, width)
