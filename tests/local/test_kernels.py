"""The engine's fused CPU kernels: built once, PyTorch's numbers, and PyTorch ops where they cannot build."""

import shutil
import stat

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("g++") is None, reason="no C++ compiler to build the kernels with"
)


@pytest.fixture(scope="module")
def ops():
    from llmforge_local import kernels

    got = kernels.load()
    assert got is not None, kernels.why_off()
    return got


def _bf16(*shape, seed=0):
    import torch

    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).bfloat16()


def test_rotary_in_one_op_is_pytorchs_bit_for_bit(ops):
    import torch

    for rows, heads, dim in ((16, 15, 64), (3, 6, 16), (1, 2, 40)):  # 40: a partial vector per half
        qkv, cos, sin = _bf16(rows, heads, dim, seed=1), _bf16(rows, dim, seed=2), _bf16(rows, dim, seed=3)
        rotated = heads - 2  # the last two heads (values) keep their numbers
        qk, half = qkv[:, :rotated], dim // 2
        want = qk * cos[:, None] + torch.cat((-qk[..., half:], qk[..., :half]), dim=-1) * sin[:, None]
        got = ops.rope_(qkv.clone(), cos, sin, rotated)
        assert torch.equal(got[:, :rotated], want)
        assert torch.equal(got[:, rotated:], qkv[:, rotated:])


def test_silu_times_up_in_one_op_is_pytorchs_bit_for_bit(ops):
    import torch
    import torch.nn.functional as F

    for shape in ((16, 1, 3072), (5, 1, 100), (2, 7, 34)):
        gate_up = _bf16(*shape, seed=4) * 4
        gate, up = gate_up.split(shape[-1] // 2, -1)
        assert torch.equal(ops.silu_mul(gate_up), F.silu(gate) * up)


def test_rms_norm_in_one_op_matches_llamas_to_the_last_bit(ops):
    import torch
    from llmforge_local.engine_model import _rms

    class Norm:
        variance_epsilon = 1e-5

    for rows, width in ((16, 576), (3, 64), (4, 50)):
        x, Norm.weight = _bf16(rows, 1, width, seed=5) * 3, _bf16(width, seed=6)
        got, want = ops.rms(x, Norm.weight, Norm.variance_epsilon), _rms(Norm, x)
        exact = (x.double() * torch.rsqrt(x.double().pow(2).mean(-1, keepdim=True) + 1e-5)).bfloat16()
        exact = (Norm.weight.double() * exact.double()).bfloat16()
        # the sum of squares runs in another order: at most one bf16 step apart, and as close to
        # the float64 answer as PyTorch is
        step = want.float().abs() * 2**-7
        assert bool(((got.float() - want.float()).abs() <= step).all())
        assert (got.float() - exact.float()).abs().mean() <= (
            want.float() - exact.float()
        ).abs().mean() * 1.5 + 1e-6


def test_the_cache_write_puts_each_rows_tokens_at_its_own_positions(ops):
    import torch

    rows, kv, width, dim, cap = 3, 2, 5, 16, 40
    qkv = _bf16(rows, width, 4 + 2 * kv, dim, seed=7).transpose(1, 2)  # (B, heads, T, D) views
    k, v = qkv[:, 4 : 4 + kv], qkv[:, 4 + kv :]
    pos = torch.tensor([[0, 1, 2, 3, 4], [7, 8, 9, 10, 11], [30, 31, 32, 33, 39]])
    want_k, want_v = _bf16(rows, kv, cap, dim, seed=8), _bf16(rows, kv, cap, dim, seed=9)
    got_k, got_v = want_k.clone(), want_v.clone()
    batch = torch.arange(rows)[:, None]
    want_k[batch, :, pos], want_v[batch, :, pos] = k.transpose(1, 2), v.transpose(1, 2)
    ops.cache_write_(got_k, got_v, k, v, pos)
    assert torch.equal(got_k, want_k) and torch.equal(got_v, want_v)
    with pytest.raises(RuntimeError, match="position 40 outside the cache's 40"):
        ops.cache_write_(got_k, got_v, k, v, pos + 1)


def test_wrong_input_is_a_clear_error_and_leaves_the_kernels_working(ops):
    import torch

    with pytest.raises(RuntimeError, match="must be a bf16 CPU tensor"):
        ops.rms(torch.ones(2, 8), torch.ones(8), 1e-5)
    with pytest.raises(RuntimeError, match="weight has 4 values for rows of 8"):
        ops.rms(torch.ones(2, 8).bfloat16(), torch.ones(4).bfloat16(), 1e-5)
    with pytest.raises(RuntimeError, match="must be even"):
        ops.silu_mul(torch.ones(2, 7).bfloat16())
    with pytest.raises(RuntimeError, match="one row per qkv row"):
        ops.rope_(torch.ones(3, 4, 8).bfloat16(), torch.ones(2, 8).bfloat16(), torch.ones(2, 8).bfloat16(), 2)
    assert ops.silu_mul(torch.zeros(1, 4).bfloat16()).shape == (1, 2)


def test_without_a_compiler_or_when_turned_off_the_engine_keeps_pytorch_ops(monkeypatch, tmp_path):
    from llmforge_local import kernels

    monkeypatch.setenv("LLMFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kernels, "_loaded", {})
    monkeypatch.setenv("LLMFORGE_KERNELS", "0")
    assert kernels.load() is None and "LLMFORGE_KERNELS=0" in kernels.why_off()
    monkeypatch.setattr(kernels, "_loaded", {})
    monkeypatch.setenv("LLMFORGE_KERNELS", "1")
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler 'no-such-compiler'"):
        kernels.build()


def test_a_failed_build_is_remembered_and_leaves_no_library(monkeypatch, tmp_path):
    from llmforge_local import kernels

    monkeypatch.setenv("LLMFORGE_CACHE", str(tmp_path / "cache"))
    calls = tmp_path / "calls"
    broken = tmp_path / "broken-cxx"
    broken.write_text(
        f'#!/bin/sh\n[ "$1" = --version ] && echo "broken 1.0" && exit 0\n'
        f'echo x >> {calls}\necho "fused.cpp:1: error: no vectors here" >&2\nexit 1\n'
    )
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="error: no vectors here"):
            kernels.build(str(broken))
    assert calls.read_text() == "x\n"  # compiled once: the second call read the failure back
    folder = kernels.library_path(str(broken)).parent
    assert [p.name for p in folder.iterdir()] == ["libllmforge_kernels.failed"]


#: the two int8 schemes: (op prefix, generator option, what the CPU needs)
SCHEMES = {
    "int8": ("q8", "amx-bf16, avx512-bf16"),
    "w8a8": ("a8", "amx-int8, avx512-bf16"),
}


def _int8_or_skip(ops, scheme):
    """``(pack, linear)`` of ``scheme``'s ops, skipping where this CPU cannot run them."""
    prefix, needs = SCHEMES[scheme]
    if not getattr(ops, f"{prefix}_ready")():
        pytest.skip(f"this CPU has no AMX ({needs}): quantize: {scheme} keeps bf16 weights here")
    return getattr(ops, f"{prefix}_pack"), getattr(ops, f"{prefix}_linear")


def _dequantized(w):
    """``w`` (.., K) as the int8 kernels hold it: rounded to 1/127 of each 32 inputs' largest."""
    import torch

    blocks = w.float().view(*w.shape[:-1], -1, 32)
    scale = blocks.abs().amax(-1, keepdim=True) / 127
    inv = torch.where(scale > 0, 1 / scale, torch.zeros_like(scale))
    return (torch.round(blocks * inv).clamp(-127, 127) * scale).view(w.shape)


def _rel(got, want):
    return ((got.float() - want).norm() / want.norm()).item()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_int8_weights_multiply_as_their_dequantized_values_do(ops, scheme):
    """Any row count (a decode step's few, a prefill's many, across the 16-row tiles) and any
    channel count (padded to whole tiles inside, cut back in the result): the product of the
    dequantized weights (``w8a8``: and of each row's inputs dequantized the same way), to bf16
    rounding of the result; and within int8 rounding of float32's."""
    import torch

    pack, linear = _int8_or_skip(ops, scheme)
    for n, k in ((960, 576), (50, 64), (17, 96)):
        w = _bf16(n, k, seed=7) * 0.05
        w[0, 3] = 2.0  # an outlier: only its own 32 inputs lose precision to it
        q, scale = pack(w)
        deq = _dequantized(w)
        for rows in (1, 5, 16, 17, 40):
            x = _bf16(2, rows, k, seed=8)
            x[0, 0, 32:64] = 0  # a group of zero inputs (w8a8: a zero scale, not a division by it)
            got = linear(x, q, scale, n)
            assert got.shape == (2, rows, n) and got.dtype == torch.bfloat16
            inputs = _dequantized(x) if scheme == "w8a8" else x.float()
            want = inputs @ deq.T
            assert _rel(got, want) < 4e-3, (n, k, rows)
            if scheme == "w8a8":  # the inputs are rounded: nearer that product than bf16 inputs'
                assert _rel(got, want) < _rel(got, x.float() @ deq.T)
            exact = x.float() @ w.float().T
            assert _rel(got, exact) < 2e-2, (n, k, rows)
        assert not torch.equal(deq[1], w[1].float())  # rounded: int8, not a copy of bf16


@pytest.mark.parametrize("scheme", SCHEMES)
def test_int8_kernel_refuses_what_it_cannot_multiply(ops, scheme):
    import torch

    pack, linear = _int8_or_skip(ops, scheme)
    prefix = SCHEMES[scheme][0]
    with pytest.raises(RuntimeError, match="multiple of 32"):
        pack(_bf16(16, 40))
    q, scale = pack(_bf16(16, 64))
    with pytest.raises(RuntimeError, match="inputs of 32 for a weight of 64"):
        linear(_bf16(3, 32), q, scale, 16)
    with pytest.raises(RuntimeError, match=f"must come from {prefix}_pack"):
        linear(_bf16(3, 64), q.float(), scale, 16)
    with pytest.raises(RuntimeError, match="bf16 CPU tensor"):
        linear(_bf16(3, 64).float(), q, scale, 16)
    assert torch.isfinite(linear(_bf16(3, 64), q, scale, 16).float()).all()  # still working


def test_decode_attention_in_one_op_is_as_precise_as_sdpa(ops):
    """Each decode row over its own cached positions, query heads sharing kv heads: as close to
    float32 attention as PyTorch's bf16 SDPA, for several head sizes and group sizes."""
    import torch
    import torch.nn.functional as F

    if not ops.attend_ready():
        pytest.skip("this CPU has no avx512-bf16: decode attention stays SDPA")
    for rows, heads, kv, dim, cap in ((16, 9, 3, 64, 256), (3, 4, 4, 32, 40), (2, 8, 2, 128, 64)):
        qkv = _bf16(rows, 1, heads + 2 * kv, dim, seed=9).transpose(1, 2)  # the engine's strided view
        q = qkv[:, :heads]
        ck, cv = _bf16(rows, kv, cap, dim, seed=10), _bf16(rows, kv, cap, dim, seed=11)
        pos = torch.randint(0, cap, (rows, 1), generator=torch.Generator().manual_seed(12))
        pos[0] = 0  # a row that sees only its own token
        seen = int(pos.max()) + 1
        keep = (torch.arange(seen)[None, :] <= pos)[:, None, None, :]
        exact, bf16 = (
            F.scaled_dot_product_attention(
                q.to(dtype),
                ck[:, :, :seen].to(dtype),
                cv[:, :, :seen].to(dtype),
                attn_mask=torch.zeros(keep.shape, dtype=dtype).masked_fill_(~keep, float("-inf")),
                scale=dim**-0.5,
                enable_gqa=True,
            )
            .transpose(1, 2)
            .reshape(rows, 1, -1)
            .float()
            for dtype in (torch.float32, torch.bfloat16)
        )
        got = ops.attend(q, ck, cv, pos, dim**-0.5)
        assert got.shape == (rows, 1, heads * dim) and got.dtype == torch.bfloat16
        assert (got.float() - exact).abs().max() <= 1.5 * (bf16 - exact).abs().max() + 1e-3
        assert torch.allclose(
            got[0].float(), cv[0, :, 0].float().repeat_interleave(heads // kv, 0).reshape(1, -1)
        )
    with pytest.raises(RuntimeError, match="outside the cache"):
        ops.attend(q, ck, cv, torch.full((rows, 1), cap), 0.1)
    with pytest.raises(RuntimeError, match="multiple of 32"):
        ops.attend(_bf16(2, 2, 1, 48), _bf16(2, 1, 8, 48), _bf16(2, 1, 8, 48), torch.zeros(2, 1), 0.1)
