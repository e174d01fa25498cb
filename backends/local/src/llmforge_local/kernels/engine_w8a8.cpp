// int8 weights times int8 activations on AMX-INT8: the generator's `quantize: w8a8`.
//
// `quantize: int8` (engine_kernels.cpp) keeps activations bf16 and widens every int8 weight tile
// to bf16 before AMX multiplies it; on this 2-core host that widening, not memory, is most of a
// decode step's matmul time (~115 cycles a 16x32 tile in L1). Here the weights go to AMX as
// they are stored and each row's inputs are quantized instead, once per call, the way
// llama.cpp treats activations for its 4-bit weights (its q8 blocks of 32):
//   a8_pack    a weight (N, K) as symmetric int8 with a scale per output channel and 32 inputs
//              (max |w| / 127 of those 32; the same numbers as q8_pack), laid out as AMX's int8
//              operand: per 16 channels and 32 inputs, [8 input quads][16 channels][4]
//   a8_linear  x (.., K) bf16: each row's 32-input groups quantized to int8 with their own scale
//              (max |x| / 127), each group's int8 products summed exactly in int32 (tdpbssd),
//              then scaled by weight scale x input scale into float32 sums; (.., n) bf16
// Precision: one more rounding than `int8` (the inputs'), measured on the 135M model as top-token
// agreement with float32 of ~95% against ~96% for `int8` (benchmarks/bench_quantize.py).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <tuple>

#include "amx.h"

namespace {

using at::Tensor;
using bf = c10::BFloat16;

#ifdef LLMFORGE_AMX
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,amx-tile,amx-int8,amx-bf16")

constexpr int64_t AN = 16;  // output channels per tile
constexpr int64_t AK = 32;  // inputs per tile: one scale group
// above this many rows the weights are widened to bf16 once per call (a8_run_wide)
constexpr int64_t kWideRows = 32;

bool a8_ready() {
  return __builtin_cpu_supports("amx-int8") && __builtin_cpu_supports("amx-bf16") && __builtin_cpu_supports("avx512bf16") &&
         llmforge::amx_permitted();
}

// tiles 0-1: int32 sums (16 rows x 16 channels), 2-3: inputs (16 rows x 32 int8), 4-5: weights
// (8 quads of inputs x 16 channels x 4); two of each, used in turn
void tile_config() {
  llmforge::TileConfig c;
  for (int t = 0; t < 2; ++t) {
    c.rows[t] = 16;
    c.colsb[t] = AN * 4;
    c.rows[2 + t] = 16;
    c.colsb[2 + t] = AK;
    c.rows[4 + t] = AK / 4;
    c.colsb[4 + t] = AN * 4;
  }
  _tile_loadconfig(&c);
}

using llmforge::widen16;

// row x (K bf16) rounded to int8 per 32 inputs (scale max |x| / 127 of the 32), written as the
// int8 path reads it (q (K), scales s[kb * stride]) or, given `dq`, as the bf16 path does: q x s
// as bf16 (K)
void quantize_row(const uint16_t* x, int64_t K, int8_t* q, float* s, int64_t stride, uint16_t* dq) {
  const __m512 sign = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t kb = 0; kb < K / AK; ++kb) {
    const __m512 a = widen16(x + kb * AK), b = widen16(x + kb * AK + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(a, sign), _mm512_and_ps(b, sign)));
    const __m512 inv = _mm512_set1_ps(amax > 0.f ? 127.f / amax : 0.f);
    const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, inv)), qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, inv));
    if (dq) {
      const __m512 sc = _mm512_set1_ps(amax / 127.f);
      _mm512_storeu_si512(dq + kb * AK, (__m512i)_mm512_cvtne2ps_pbh(_mm512_mul_ps(_mm512_cvtepi32_ps(qb), sc),
                                                                       _mm512_mul_ps(_mm512_cvtepi32_ps(qa), sc)));
    } else {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + kb * AK), _mm512_cvtsepi32_epi8(qa));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + kb * AK + 16), _mm512_cvtsepi32_epi8(qb));
      s[kb * stride] = amax / 127.f;
    }
  }
}

// sums[r] += int32 tile row r x (weight scales x row r's input scale)
inline void accumulate(__m512 (&sums)[16], const int32_t (*c)[16], const float* w_scales, const float* x_scales) {
  const __m512 ws = _mm512_loadu_ps(w_scales);
#pragma GCC unroll 16
  for (int r = 0; r < 16; ++r)
    sums[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[r])), _mm512_mul_ps(ws, _mm512_set1_ps(x_scales[r])),
                              sums[r]);
}

// one int8 tile ([8 input quads][16 channels][4]) times its 16 channels' scales as bf16 in
// AMX's bf16 operand layout ([16 input pairs][16 channels][2]): quad row j gives pair rows 2j
// (its inputs 0-1, the low half of each channel's 4 bytes) and 2j + 1 (inputs 2-3)
inline void widen_tile(const int8_t* src, const float* scales, uint16_t* dst) {
  const llmforge::PairScales s(scales);
  for (int j = 0; j < 8; ++j) {
    const __m512i quad = _mm512_loadu_si512(src + j * 64);
    for (int half = 0; half < 2; ++half) {
      const __m256i pairs = _mm512_cvtepi32_epi16(half ? _mm512_srli_epi32(quad, 16) : quad);  // [16 ch][2]
      llmforge::widen_row(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1), s,
                          dst + (2 * j + half) * 32);
    }
  }
}

// tiles 0-3: float32 sums (16 rows x 16 channels), 4: inputs (16 rows x 32 bf16), 5-6: widened
// weights (16 input pairs x 16 channels x 2)
void bf16_tile_config() {
  llmforge::TileConfig c;
  for (int t = 0; t < 7; ++t) {
    c.rows[t] = 16;
    c.colsb[t] = 64;
  }
  _tile_loadconfig(&c);
}

#define LLMFORGE_DOT(T, B)                \
  if ((T) < tiles) {                      \
    _tile_loadd(B, w + ((T) * KB + kb) * AN * AK, 64); \
    _tile_dpbf16ps(T, 4, B);              \
  }

// many rows (a prefill): each group of 4 output tiles' weights widened to bf16 once, then every
// 16 rows of (int8-rounded) inputs multiplied on AMX-BF16 with float32 sums. Per row and tile this
// is one tile multiply where the int8 path also scales every 32-input group's sums (its cost grows
// with the rows, and passes the widening's beyond a few tiles of rows).
void a8_run_wide(const uint16_t* xd, const int8_t* q, const float* scale, bf* out, int64_t M, int64_t K,
                 int64_t N_tiles, int64_t n) {
  const int64_t KB = K / AK, Mp = (M + 15) / 16 * 16;
  constexpr int64_t G = 4;
  const int64_t groups = (N_tiles + G - 1) / G;
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min<int64_t>(at::get_num_threads(), groups), 1, [&](int64_t, int64_t) {
    std::vector<uint16_t> wide(G * KB * AN * AK);
    alignas(64) float sums[G][16][16];
    bf16_tile_config();
    for (int64_t g; (g = next.fetch_add(1, std::memory_order_relaxed)) < groups;) {
      const int64_t t0 = g * G, tiles = std::min(G, N_tiles - t0);
      for (int64_t i = 0; i < tiles * KB; ++i)
        widen_tile(q + (t0 * KB + i) * AN * AK, scale + (t0 * KB + i) * AN, wide.data() + i * AN * AK);
      const uint16_t* w = wide.data();
      for (int64_t m0 = 0; m0 < Mp; m0 += 16) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int64_t kb = 0; kb < KB; ++kb) {
          _tile_loadd(4, xd + m0 * K + kb * AK, K * 2);
          LLMFORGE_DOT(0, 5)
          LLMFORGE_DOT(1, 6)
          LLMFORGE_DOT(2, 5)
          LLMFORGE_DOT(3, 6)
        }
        _tile_stored(0, sums[0], 64);
        _tile_stored(1, sums[1], 64);
        _tile_stored(2, sums[2], 64);
        _tile_stored(3, sums[3], 64);
        for (int64_t t = 0; t < tiles; ++t) {
          const int64_t c0 = (t0 + t) * AN;
          const __mmask16 keep = n - c0 >= AN ? 0xFFFF : static_cast<__mmask16>((1u << (n - c0)) - 1);
          for (int64_t r = 0; r < std::min<int64_t>(16, M - m0); ++r)
            _mm256_mask_storeu_epi16(reinterpret_cast<uint16_t*>(out) + (m0 + r) * n + c0, keep,
                                     (__m256i)_mm512_cvtneps_pbh(_mm512_load_ps(sums[t][r])));
        }
      }
    }
    _tile_release();
  });
}
#undef LLMFORGE_DOT

void a8_run(const bf* x, const int8_t* q, const float* scale, bf* out, int64_t M, int64_t K, int64_t N_tiles,
            int64_t n) {
  const int64_t KB = K / AK, Mp = (M + 15) / 16 * 16;
  const bool wide = M > kWideRows;
  // the rows' int8 inputs (padded with zero rows to whole tiles) and their scales [group][row];
  // for the bf16 path, those int8 inputs times their scales as bf16 instead
  std::vector<int8_t> xq(wide ? 0 : Mp * K, 0);
  std::vector<float> xs(wide ? 0 : KB * Mp, 0.f);
  std::vector<uint16_t> xd(wide ? Mp * K : 0, 0);
  at::parallel_for(0, M, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      quantize_row(reinterpret_cast<const uint16_t*>(x) + r * K, K, wide ? nullptr : xq.data() + r * K,
                   wide ? nullptr : xs.data() + r, Mp, wide ? xd.data() + r * K : nullptr);
  });
  if (wide) return a8_run_wide(xd.data(), q, scale, out, M, K, N_tiles, n);
  // groups of 4 output tiles (64 channels: 128 bytes of a row, whole cache lines that no other
  // thread writes) handed out one at a time (see q8_run)
  constexpr int64_t G = 4;
  const int64_t groups = (N_tiles + G - 1) / G;
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min<int64_t>(at::get_num_threads(), groups), 1, [&](int64_t, int64_t) {
    alignas(64) int32_t c[2][16][16];
    tile_config();
    for (int64_t g; (g = next.fetch_add(1, std::memory_order_relaxed)) < groups;)
    for (int64_t t = g * G; t < std::min(N_tiles, g * G + G); ++t) {
      const int8_t* w = q + t * KB * AN * AK;
      const float* ws = scale + t * KB * AN;
      const int64_t c0 = t * AN;
      const __mmask16 keep = n - c0 >= AN ? 0xFFFF : static_cast<__mmask16>((1u << (n - c0)) - 1);
      for (int64_t m0 = 0; m0 < Mp; m0 += 16) {
        __m512 sums[16];
        for (auto& s : sums) s = _mm512_setzero_ps();
        const int8_t* a = xq.data() + m0 * K;
        // group kb's product is stored while group kb - 1's is scaled into the sums
        for (int64_t kb = 0; kb < KB; ++kb) {
          const int8_t* wt = w + kb * AN * AK;
          for (int64_t i = 0; i < AN * AK; i += 64)
            _mm_prefetch(reinterpret_cast<const char*>(wt + 4096 + i), _MM_HINT_T0);
          if (kb & 1) {
            _tile_zero(1);
            _tile_loadd(3, a + kb * AK, K);
            _tile_loadd(5, wt, AN * 4);
            _tile_dpbssd(1, 3, 5);
            _tile_stored(1, c[1], 64);
          } else {
            _tile_zero(0);
            _tile_loadd(2, a + kb * AK, K);
            _tile_loadd(4, wt, AN * 4);
            _tile_dpbssd(0, 2, 4);
            _tile_stored(0, c[0], 64);
          }
          if (kb > 0) accumulate(sums, c[(kb - 1) & 1], ws + (kb - 1) * AN, xs.data() + (kb - 1) * Mp + m0);
        }
        accumulate(sums, c[(KB - 1) & 1], ws + (KB - 1) * AN, xs.data() + (KB - 1) * Mp + m0);
        for (int64_t r = 0; r < std::min<int64_t>(16, M - m0); ++r)
          _mm256_mask_storeu_epi16(reinterpret_cast<uint16_t*>(out) + (m0 + r) * n + c0, keep,
                                   (__m256i)_mm512_cvtneps_pbh(sums[r]));
      }
    }
    _tile_release();
  });
}

#pragma GCC pop_options
#else
bool a8_ready() { return false; }
#endif

// w (N, K) -> (int8 tiles, float32 scales): q8_pack's numbers in AMX's int8 operand layout
std::tuple<Tensor, Tensor> a8_pack(const Tensor& w) { return llmforge::pack_tiles(w, 4, "a8_pack"); }

// x (.., K) bf16 times a8_pack's weights, each row's inputs rounded to int8 per 32: (.., n) bf16
Tensor a8_linear(const Tensor& x_, const Tensor& q, const Tensor& scale, int64_t n) {
  auto [x, out, M] = llmforge::int8_call(x_, q, scale, n, "a8_linear", "a8_pack");
  TORCH_CHECK(a8_ready(), "a8_linear: this CPU or kernel has no AMX-INT8 (see a8_ready)");
#ifdef LLMFORGE_AMX
  if (M > 0)
    a8_run(x.data_ptr<bf>(), q.data_ptr<int8_t>(), scale.data_ptr<float>(), out.data_ptr<bf>(), M, x.size(-1),
           q.size(0) / 16, n);
#endif
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(llmforge_kernels, m) {
  m.def("a8_ready() -> bool", a8_ready);
  m.def("a8_pack(Tensor weight) -> (Tensor, Tensor)", a8_pack);
  m.def("a8_linear(Tensor x, Tensor q, Tensor scale, int n) -> Tensor", a8_linear);
}
