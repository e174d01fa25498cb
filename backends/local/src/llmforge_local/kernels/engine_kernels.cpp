// The continuous engine's elementwise steps of a Llama decoder layer, one op each, for bf16 on CPU.
//
// A decode step runs tiny tensors (one row per running sequence) through 30 layers; ATen spends
// more time dispatching the handful of ops each of these steps decomposes into than computing
// them. Each op here does one step in one pass over its rows with ATen's own vector types, and
// rounds to bf16 wherever the PyTorch expression it replaces does:
//   rms       LlamaRMSNorm: w * (x.float() * rsqrt(mean(x^2) + eps)).to(bf16)
//   rope_     q/k rotary, in place: x * cos + rotate_half(x) * sin
//   silu_mul  the MLP's act: silu(gate) * up over the fused gate/up matmul's output
//   cache_write_  each row's new keys and values into its own cache slot, at its own positions
// rope_, silu_mul and cache_write_ give PyTorch's numbers bit for bit; rms sums its squares in another order, so
// it may differ from PyTorch in the last bit of a bf16 value.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>

namespace {

using at::Tensor;
using bf = c10::BFloat16;
using fV = at::vec::Vectorized<float>;
using bV = at::vec::Vectorized<bf>;
constexpr int64_t NB = bV::size();  // bf16 lanes per load: two float vectors

inline std::tuple<fV, fV> load(const bf* p, int64_t n) {
  return at::vec::convert_to_float<bf>(n == NB ? bV::loadu(p) : bV::loadu(p, n));
}
inline void store(bf* p, const fV& a, const fV& b, int64_t n) {
  auto v = at::vec::convert_from_float<bf>(a, b);
  if (n == NB) {
    v.store(p);
  } else {
    v.store(p, n);
  }
}
inline fV round_bf16(const fV& x) {  // what a bf16 tensor holds of x
  return std::get<0>(at::vec::convert_to_float<bf>(at::vec::convert_from_float<bf>(x, x)));
}

void check(const Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kBFloat16, op, ": ", name,
              " must be a bf16 CPU tensor, got ", t.scalar_type(), " on ", t.device());
}

// rows of at least this many elements each run on one thread (ATen's own grain)
int64_t grain(int64_t width) { return std::max<int64_t>(1, at::internal::GRAIN_SIZE / std::max<int64_t>(width, 1)); }

Tensor rms(const Tensor& x_, const Tensor& w_, double eps) {
  check(x_, "rms", "x");
  check(w_, "rms", "weight");
  const int64_t C = x_.size(-1);
  TORCH_CHECK(w_.numel() == C, "rms: weight has ", w_.numel(), " values for rows of ", C);
  auto x = x_.contiguous();
  auto w = w_.contiguous();
  auto out = at::empty_like(x);
  const int64_t M = C ? x.numel() / C : 0;
  const bf* xp = x.data_ptr<bf>();
  const bf* wp = w.data_ptr<bf>();
  bf* op = out.data_ptr<bf>();
  at::parallel_for(0, M, grain(C), [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      const bf* r = xp + m * C;
      bf* o = op + m * C;
      fV acc(0.f);
      for (int64_t c = 0; c < C; c += NB) {
        const int64_t n = std::min(NB, C - c);
        auto [a, b] = load(r + c, n);  // a partial load's tail lanes are zero
        acc = at::vec::fmadd(a, a, acc);
        acc = at::vec::fmadd(b, b, acc);
      }
      const float ss = at::vec::vec_reduce_all<float>([](fV& p, fV& q) { return p + q; }, acc);
      const fV inv(1.0f / std::sqrt(ss / static_cast<float>(C) + static_cast<float>(eps)));
      for (int64_t c = 0; c < C; c += NB) {
        const int64_t n = std::min(NB, C - c);
        auto [a, b] = load(r + c, n);
        auto [wa, wb] = load(wp + c, n);
        store(o + c, wa * round_bf16(a * inv), wb * round_bf16(b * inv), n);
      }
    }
  });
  return out;
}

Tensor rope_(Tensor qkv, const Tensor& cos_, const Tensor& sin_, int64_t heads) {
  check(qkv, "rope_", "qkv");
  check(cos_, "rope_", "cos");
  check(sin_, "rope_", "sin");
  TORCH_CHECK(qkv.dim() == 3 && qkv.is_contiguous(), "rope_: qkv must be a contiguous (rows, heads, head_dim) tensor");
  const int64_t M = qkv.size(0), NH = qkv.size(1), D = qkv.size(2), half = D / 2;
  TORCH_CHECK(D % 2 == 0 && heads >= 0 && heads <= NH, "rope_: ", heads, " heads of ", NH, " with head_dim ", D);
  auto cs = cos_.reshape({-1, D}).contiguous();
  auto sn = sin_.reshape({-1, D}).contiguous();
  TORCH_CHECK(cs.size(0) == M && sn.size(0) == M, "rope_: cos/sin need one row per qkv row");
  bf* p = qkv.data_ptr<bf>();
  const bf* c = cs.data_ptr<bf>();
  const bf* s = sn.data_ptr<bf>();
  at::parallel_for(0, M, grain(heads * D), [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      const bf* cm = c + m * D;
      const bf* sm = s + m * D;
      for (int64_t h = 0; h < heads; ++h) {
        bf* v = p + (m * NH + h) * D;
        for (int64_t d = 0; d < half; d += NB) {
          const int64_t n = std::min(NB, half - d);
          auto [x1a, x1b] = load(v + d, n);
          auto [x2a, x2b] = load(v + d + half, n);
          auto [c1a, c1b] = load(cm + d, n);
          auto [c2a, c2b] = load(cm + d + half, n);
          auto [s1a, s1b] = load(sm + d, n);
          auto [s2a, s2b] = load(sm + d + half, n);
          // first half: x1*cos - x2*sin; second: x2*cos + x1*sin (each product rounded, as in torch)
          store(v + d, round_bf16(x1a * c1a) + round_bf16(x2a.neg() * s1a),
                round_bf16(x1b * c1b) + round_bf16(x2b.neg() * s1b), n);
          store(v + d + half, round_bf16(x2a * c2a) + round_bf16(x1a * s2a),
                round_bf16(x2b * c2b) + round_bf16(x1b * s2b), n);
        }
      }
    }
  });
  return qkv;
}

Tensor silu_mul(const Tensor& gu_) {
  check(gu_, "silu_mul", "gate_up");
  const int64_t W = gu_.size(-1), I = W / 2;
  TORCH_CHECK(W % 2 == 0, "silu_mul: the last dim (gate then up) must be even, got ", W);
  auto gu = gu_.contiguous();
  auto sizes = gu.sizes().vec();
  sizes.back() = I;
  auto out = at::empty(sizes, gu.options());
  const int64_t M = W ? gu.numel() / W : 0;
  const bf* g = gu.data_ptr<bf>();
  bf* o = out.data_ptr<bf>();
  const fV one(1.f);
  at::parallel_for(0, M, grain(W), [&](int64_t begin, int64_t end) {
    for (int64_t m = begin; m < end; ++m) {
      const bf* gm = g + m * W;
      const bf* um = gm + I;
      bf* om = o + m * I;
      for (int64_t i = 0; i < I; i += NB) {
        const int64_t n = std::min(NB, I - i);
        auto [xa, xb] = load(gm + i, n);
        auto [ua, ub] = load(um + i, n);
        const fV sa = round_bf16(xa / (one + xa.neg().exp()));
        const fV sb = round_bf16(xb / (one + xb.neg().exp()));
        store(om + i, sa * ua, sb * ub, n);
      }
    }
  });
  return out;
}

// Keys and values of one step into their cache slots: row b's token t goes to position pos[b, t] of
// slot b, for every kv head -- what `cache[batch, :, pos] = new.transpose(1, 2)` does with advanced
// indexing, as plain copies. caches (B, KV, cap, D) contiguous; k/v (B, KV, T, D) with head_dim
// contiguous; pos (B, T).
void cache_write_(Tensor ck, Tensor cv, const Tensor& k, const Tensor& v, const Tensor& pos_) {
  check(ck, "cache_write_", "key cache");
  check(cv, "cache_write_", "value cache");
  check(k, "cache_write_", "k");
  check(v, "cache_write_", "v");
  TORCH_CHECK(ck.dim() == 4 && k.dim() == 4 && ck.is_contiguous() && cv.is_contiguous() && ck.sizes() == cv.sizes(),
              "cache_write_: caches must be contiguous (rows, kv_heads, capacity, head_dim) tensors");
  const int64_t B = k.size(0), KV = k.size(1), T = k.size(2), D = k.size(3), cap = ck.size(2);
  TORCH_CHECK(v.sizes() == k.sizes() && ck.size(0) == B && ck.size(1) == KV && ck.size(3) == D &&
                  k.stride(3) == 1 && v.stride(3) == 1,
              "cache_write_: shapes disagree");
  auto pos = pos_.to(at::kLong).contiguous();
  TORCH_CHECK(pos.numel() == B * T, "cache_write_: one position per row and token");
  const int64_t* P = pos.data_ptr<int64_t>();
  for (int64_t i = 0; i < B * T; ++i)
    TORCH_CHECK(P[i] >= 0 && P[i] < cap, "cache_write_: position ", P[i], " outside the cache's ", cap);
  const bf *kp = k.data_ptr<bf>(), *vp = v.data_ptr<bf>();
  bf *kc = ck.data_ptr<bf>(), *vc = cv.data_ptr<bf>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < KV; ++h)
      for (int64_t t = 0; t < T; ++t) {
        const int64_t at = ((b * KV + h) * cap + P[b * T + t]) * D;
        std::copy_n(kp + b * k.stride(0) + h * k.stride(1) + t * k.stride(2), D, kc + at);
        std::copy_n(vp + b * v.stride(0) + h * v.stride(1) + t * v.stride(2), D, vc + at);
      }
}

}  // namespace

TORCH_LIBRARY(llmforge_kernels, m) {
  m.def("rms(Tensor x, Tensor weight, float eps) -> Tensor", rms);
  m.def("rope_(Tensor(a!) qkv, Tensor cos, Tensor sin, int heads) -> Tensor(a!)", rope_);
  m.def("silu_mul(Tensor gate_up) -> Tensor", silu_mul);
  m.def("cache_write_(Tensor(a!) key_cache, Tensor(b!) value_cache, Tensor k, Tensor v, Tensor positions) -> ()",
        cache_write_);
}
