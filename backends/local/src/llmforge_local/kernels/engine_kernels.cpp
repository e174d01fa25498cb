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
//   attend    a decode step's attention: each row's query heads over its own cached positions
//             (float32 scores, softmax and sums, as precise as SDPA's bf16 path, not bit for bit),
//             without SDPA's per-call set-up, which outweighs the arithmetic at one token a row
//
// Beside them, int8 weights for the projections and the LM head (the generator's `quantize: int8`;
// `w8a8`, which quantizes the inputs too, is engine_w8a8.cpp's):
//   q8_pack    a weight (N, K) as symmetric int8 with a scale per output channel and 32 inputs
//              (max |w| / 127 of those 32), laid out in the tiles q8_linear streams
//   q8_linear  x (.., K) bf16 times those weights: each 16x32 tile of int8 times its scales
//              widened to bf16 in L1, and multiplied on AMX with float32 sums
// A decode step's matmuls read every weight once for a handful of rows, so they run at the speed
// of memory: int8 weights are half the bytes of bf16. These need AMX (x86, amx-bf16 and
// avx512-bf16; q8_ready says) and are compiled for it whatever the rest's vector width.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <tuple>
#include <vector>

#include "amx.h"

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


#ifdef LLMFORGE_AMX
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-bf16")

constexpr int64_t QN = 16;        // output channels per tile (a float32 tile row is 16 wide)
constexpr int64_t QK = 32;        // inputs per tile (a bf16 tile row is 64 bytes)
constexpr int64_t QT = QN * QK;   // int8 values per tile
constexpr int64_t QG = 4;         // output tiles computed together (four accumulators)
constexpr int64_t QAHEAD = 4096;  // bytes of weights prefetched ahead of the stream

bool q8_ready() {
  return __builtin_cpu_supports("amx-bf16") && __builtin_cpu_supports("avx512bf16") && llmforge::amx_permitted();
}

// tiles 0-3: float32 sums (m x 16); 4: the rows' inputs (m x 32 bf16); 5-6: widened weights
// (16 pairs of inputs x 16 channels)
void tile_config(int m) {
  llmforge::TileConfig c;
  for (int t = 0; t < 4; ++t) {
    c.rows[t] = m;
    c.colsb[t] = QN * 4;
  }
  c.rows[4] = m;
  c.colsb[4] = QK * 2;
  for (int t = 5; t < 7; ++t) {
    c.rows[t] = QK / 2;
    c.colsb[t] = QN * 4;
  }
  _tile_loadconfig(&c);
}

// one tile of int8 weights times their 16 channels' scales, as bf16. A 64-byte row of the tile is
// [2 input pairs][16 channels][2]: its first and third 16 bytes are channels 0-7, each twice
// (two inputs), the others channels 8-15.
inline void widen(const int8_t* src, const float* scales, uint16_t* dst) {
  const llmforge::PairScales s(scales);
  for (int64_t i = 0; i < QT; i += 32)  // 16 bytes per widening load: no shuffle to split a wider one
    llmforge::widen_row(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)),
                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 16)), s, dst + i);
}

inline void tile_dot(int t, int b) {  // tile t += tile 4 x tile b (tile numbers are immediates)
  if (b == 5) {
    switch (t) {
      case 0: _tile_dpbf16ps(0, 4, 5); break;
      case 1: _tile_dpbf16ps(1, 4, 5); break;
      case 2: _tile_dpbf16ps(2, 4, 5); break;
      default: _tile_dpbf16ps(3, 4, 5);
    }
  } else {
    switch (t) {
      case 0: _tile_dpbf16ps(0, 4, 6); break;
      case 1: _tile_dpbf16ps(1, 4, 6); break;
      case 2: _tile_dpbf16ps(2, 4, 6); break;
      default: _tile_dpbf16ps(3, 4, 6);
    }
  }
}

// the sums of `tiles` output tiles for rows m0..m0+m into out (rows of n)
inline void q8_store(float (*sums)[16][16], int64_t tiles, int m, int64_t ch0, int64_t n, bf* out, int64_t m0) {
  _tile_stored(0, sums[0], 64);
  _tile_stored(1, sums[1], 64);
  _tile_stored(2, sums[2], 64);
  _tile_stored(3, sums[3], 64);
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t c0 = ch0 + t * QN;
    const __mmask16 keep = n - c0 >= QN ? 0xFFFF : static_cast<__mmask16>((1u << (n - c0)) - 1);
    for (int r = 0; r < m; ++r) {
      const __m256bh v = _mm512_cvtneps_pbh(_mm512_load_ps(sums[t][r]));
      _mm256_mask_storeu_epi16(out + (m0 + r) * n + c0, keep, (__m256i)v);
    }
  }
}

void q8_run(const bf* x, const int8_t* q, const float* scale, bf* out, int64_t M, int64_t K, int64_t N_tiles,
            int64_t n) {
  const int64_t KB = K / QK, groups = (N_tiles + QG - 1) / QG;
  // groups are handed out one at a time, not split evenly up front: on a busy machine a thread that
  // loses its core for a while leaves its share to the others instead of holding up the op
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min<int64_t>(at::get_num_threads(), groups), 1, [&](int64_t, int64_t) {
    // few rows: each tile is widened and used at once (a decode step: one pass over the weights);
    // more: a group's tiles are widened once into a buffer every 16 rows read
    std::vector<uint16_t> wide(M <= 16 ? 2 * QT : QG * KB * QT);
    alignas(64) float sums[QG][16][16];
    int configured = -1;
    for (int64_t g; (g = next.fetch_add(1, std::memory_order_relaxed)) < groups;) {
      const int64_t t0 = g * QG, tiles = std::min(QG, N_tiles - t0);
      const int8_t* group = q + t0 * KB * QT;
      const float* group_scales = scale + t0 * KB * QN;
      if (M > 16) {
        for (int64_t i = 0; i < tiles * KB; ++i) widen(group + i * QT, group_scales + i * QN, wide.data() + i * QT);
      }
      for (int64_t m0 = 0; m0 < M; m0 += 16) {
        const int m = static_cast<int>(std::min<int64_t>(16, M - m0));
        if (m != configured) {
          tile_config(m);
          configured = m;
        }
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int64_t kb = 0; kb < KB; ++kb) {
          _tile_loadd(4, x + m0 * K + kb * QK, K * 2);
          for (int64_t t = 0; t < tiles; ++t) {
            const uint16_t* w;
            if (M <= 16) {
              const int64_t tile = t * KB + kb;
              const int8_t* src = group + tile * QT;
              for (int64_t i = 0; i < QT; i += 64) _mm_prefetch(reinterpret_cast<const char*>(src + QAHEAD + i), _MM_HINT_T0);
              uint16_t* dst = wide.data() + (t & 1) * QT;
              widen(src, group_scales + tile * QN, dst);
              w = dst;
            } else {
              w = wide.data() + (t * KB + kb) * QT;
            }
            if (t & 1) {
              _tile_loadd(6, w, 64);
              tile_dot(static_cast<int>(t), 6);
            } else {
              _tile_loadd(5, w, 64);
              tile_dot(static_cast<int>(t), 5);
            }
          }
        }
        q8_store(sums, tiles, m, t0 * QN, n, out, m0);
      }
    }
    _tile_release();
  });
}

bool attend_ready() { return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw"); }

inline float dot64(const uint16_t* a, const uint16_t* b, int64_t D) {  // bf16 dot in float32
  __m512 acc = _mm512_setzero_ps();
  for (int64_t d = 0; d < D; d += 32)
    acc = _mm512_dpbf16_ps(acc, (__m512bh)_mm512_loadu_si512(a + d), (__m512bh)_mm512_loadu_si512(b + d));
  return _mm512_reduce_add_ps(acc);
}

using llmforge::widen16;

// one decode row's attention for the G query heads that share kv head `h`: scores in float32
// (bf16 products summed exactly as a float32 matmul would), softmax in float32, values weighed in
// float32, the result rounded to bf16 once
void attend_row(const uint16_t* q, int64_t q_head_stride, const uint16_t* k, const uint16_t* v, int64_t n, int64_t G,
                int64_t D, float scale, uint16_t* out, float* scores) {
  for (int64_t g = 0; g < G; ++g) {
    float* s = scores + g * n;
    float top = -INFINITY;
    for (int64_t j = 0; j < n; ++j) {
      s[j] = dot64(q + g * q_head_stride, k + j * D, D) * scale;
      top = std::max(top, s[j]);
    }
    const fV mx(top);
    fV total(0.f);
    int64_t j = 0;
    for (; j + fV::size() <= n; j += fV::size()) {
      const fV e = (fV::loadu(s + j) - mx).exp_u20();
      e.store(s + j);
      total = total + e;
    }
    float sum = at::vec::vec_reduce_all<float>([](fV& a, fV& b) { return a + b; }, total);
    for (; j < n; ++j) {
      s[j] = std::exp(s[j] - top);
      sum += s[j];
    }
    const float inv = 1.f / sum;
    __m512 acc[8];
    const int64_t NV = D / 16;
    for (int64_t u = 0; u < NV; ++u) acc[u] = _mm512_setzero_ps();
    for (int64_t jj = 0; jj < n; ++jj) {
      const __m512 p = _mm512_set1_ps(s[jj] * inv);
      for (int64_t u = 0; u < NV; ++u) acc[u] = _mm512_fmadd_ps(p, widen16(v + jj * D + u * 16), acc[u]);
    }
    for (int64_t u = 0; u < NV; ++u)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + g * D + u * 16), (__m256i)_mm512_cvtneps_pbh(acc[u]));
  }
}
#pragma GCC pop_options
#else
bool q8_ready() { return false; }
bool attend_ready() { return false; }
#endif

// Decode attention: row b's query heads q (B, H, 1, D) over positions 0..pos[b] of its cache slot
// (caches (B, KV, cap, D), head_dim contiguous), each kv head shared by H / KV query heads;
// (B, 1, H * D) bf16. What scaled_dot_product_attention does for one new token per row, without
// its per-call set-up, which outweighs the arithmetic at these sizes.
Tensor attend(const Tensor& q, const Tensor& ck, const Tensor& cv, const Tensor& pos_, double scale) {
  check(q, "attend", "q");
  check(ck, "attend", "key cache");
  check(cv, "attend", "value cache");
  TORCH_CHECK(attend_ready(), "attend: this CPU has no avx512-bf16 (see attend_ready)");
  TORCH_CHECK(q.dim() == 4 && q.size(2) == 1 && ck.dim() == 4 && ck.sizes() == cv.sizes() && ck.is_contiguous() &&
                  cv.is_contiguous() && q.stride(3) == 1,
              "attend: q (rows, heads, 1, head_dim) and contiguous caches (rows, kv_heads, capacity, head_dim)");
  const int64_t B = q.size(0), H = q.size(1), D = q.size(3), KV = ck.size(1), cap = ck.size(2);
  TORCH_CHECK(ck.size(0) == B && ck.size(3) == D && KV > 0 && H % KV == 0, "attend: shapes disagree");
  TORCH_CHECK(D % 32 == 0 && D <= 128, "attend: head_dim must be a multiple of 32, at most 128");
  auto pos = pos_.to(at::kLong).contiguous();
  TORCH_CHECK(pos.numel() == B, "attend: one position per row");
  const int64_t* P = pos.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    TORCH_CHECK(P[b] >= 0 && P[b] < cap, "attend: position ", P[b], " outside the cache's ", cap);
  auto out = at::empty({B, 1, H * D}, q.options());
#ifdef LLMFORGE_AMX
  const int64_t G = H / KV;
  const auto* qp = reinterpret_cast<const uint16_t*>(q.data_ptr<bf>());
  const auto* kp = reinterpret_cast<const uint16_t*>(ck.data_ptr<bf>());
  const auto* vp = reinterpret_cast<const uint16_t*>(cv.data_ptr<bf>());
  auto* op = reinterpret_cast<uint16_t*>(out.data_ptr<bf>());
  const float sc = static_cast<float>(scale);
  std::atomic<int64_t> next{0};  // rows of unequal lengths: handed out one at a time
  at::parallel_for(0, std::min<int64_t>(at::get_num_threads(), B * KV), 1, [&](int64_t, int64_t) {
    std::vector<float> scores(G * cap);
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < B * KV;) {
      const int64_t b = t / KV, h = t % KV, n = P[b] + 1;
      const int64_t slot = (b * KV + h) * cap * D;
      attend_row(qp + b * q.stride(0) + h * G * q.stride(1), q.stride(1), kp + slot, vp + slot, n, G, D, sc,
                 op + b * H * D + h * G * D, scores.data());
    }
  });
#endif
  return out;
}

// w (N, K) -> (int8 tiles, float32 scales) in AMX's bf16 operand layout (see pack_tiles)
std::tuple<Tensor, Tensor> q8_pack(const Tensor& w) { return llmforge::pack_tiles(w, 2, "q8_pack"); }

// x (.., K) bf16 times q8_pack's weights: (.., n) bf16, n the weight's real channels
Tensor q8_linear(const Tensor& x_, const Tensor& q, const Tensor& scale, int64_t n) {
  auto [x, out, M] = llmforge::int8_call(x_, q, scale, n, "q8_linear", "q8_pack");
  TORCH_CHECK(q8_ready(), "q8_linear: this CPU or kernel has no AMX (see q8_ready)");
#ifdef LLMFORGE_AMX
  if (M > 0)
    q8_run(x.data_ptr<bf>(), q.data_ptr<int8_t>(), scale.data_ptr<float>(), out.data_ptr<bf>(), M, x.size(-1),
           q.size(0) / 16, n);
#endif
  return out;
}

}  // namespace

TORCH_LIBRARY(llmforge_kernels, m) {
  m.def("rms(Tensor x, Tensor weight, float eps) -> Tensor", rms);
  m.def("rope_(Tensor(a!) qkv, Tensor cos, Tensor sin, int heads) -> Tensor(a!)", rope_);
  m.def("silu_mul(Tensor gate_up) -> Tensor", silu_mul);
  m.def("cache_write_(Tensor(a!) key_cache, Tensor(b!) value_cache, Tensor k, Tensor v, Tensor positions) -> ()",
        cache_write_);
  m.def("q8_ready() -> bool", q8_ready);
  m.def("q8_pack(Tensor weight) -> (Tensor, Tensor)", q8_pack);
  m.def("q8_linear(Tensor x, Tensor q, Tensor scale, int n) -> Tensor", q8_linear);
  m.def("attend_ready() -> bool", attend_ready);
  m.def("attend(Tensor q, Tensor key_cache, Tensor value_cache, Tensor positions, float scale) -> Tensor", attend);
}
