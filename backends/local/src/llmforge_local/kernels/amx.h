// What engine_kernels.cpp (int8 weights) and engine_w8a8.cpp (int8 weights and inputs) share:
// AMX's tile configuration and permission, and the weights' int8 quantization.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#if defined(__x86_64__) && defined(__GNUC__)
#define LLMFORGE_AMX 1
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace llmforge {

#ifdef LLMFORGE_AMX
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Linux hands AMX's tile state to a process only when asked (once per process)
inline bool amx_permitted() {
  static const bool ok = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
  return ok;
}

#define LLMFORGE_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

LLMFORGE_BF16_TARGET inline __m512 widen16(const uint16_t* p) {  // 16 bf16 as float32
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}

// A 16-channel tile's scales for AMX's bf16 operand, whose 64-byte rows are [16 channels][2]:
// `lo` for the row's first 16 values (channels 0-7, each twice), `hi` for the rest (8-15)
struct PairScales {
  __m512 lo, hi;
  LLMFORGE_BF16_TARGET explicit PairScales(const float* scales) {
    const __m512 s16 = _mm512_loadu_ps(scales);
    lo = _mm512_permutexvar_ps(_mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0), s16);
    hi = _mm512_permutexvar_ps(_mm512_set_epi32(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8), s16);
  }
};

// one such row from its 32 int8 weights (`a`: the first 16, `b`: the rest), times the scales, as
// 32 bf16 at dst (exact int8, one float32 multiply, one rounding)
LLMFORGE_BF16_TARGET inline void widen_row(__m128i a, __m128i b, const PairScales& s, uint16_t* dst) {
  const __m512 lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(a)), s.lo);
  const __m512 hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), s.hi);
  _mm512_storeu_si512(dst, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}
#endif

// w (N, K) as symmetric int8 per output channel and 32 inputs (max |w| / 127 of the 32), N padded
// with zero channels to a multiple of 16, in tiles of 16 channels x 32 inputs laid out as the AMX
// operand with `per` inputs per channel side by side (2: bf16's [16 pairs][16][2]; 4: int8's
// [8 quads][16][4]): (tiles (Np, K) int8, scales (Np/16 * K/32 * 16) float32). Tile (i, j) holds
// channels 16i.. and inputs 32j.., its 16 channels' scales at 16 (i K/32 + j); channel block i's
// tiles follow each other, so a block's weights are one stream.
inline std::tuple<at::Tensor, at::Tensor> pack_tiles(const at::Tensor& w_, int64_t per, const char* op) {
  TORCH_CHECK(w_.dim() == 2 && w_.device().is_cpu() && w_.is_floating_point(), op, ": a 2-d float CPU weight");
  const int64_t N = w_.size(0), K = w_.size(1);
  TORCH_CHECK(K % 32 == 0, op, ": the input width ", K, " must be a multiple of ", 32);
  const int64_t Np = (N + 15) / 16 * 16;
  auto w = at::zeros({Np, K}, w_.options().dtype(at::kFloat));
  w.narrow(0, 0, N).copy_(w_);
  auto blocks = w.view({Np, K / 32, 32});
  auto scale = blocks.abs().amax(2, true).clamp_min(1e-12) / 127.0;  // (Np, K/32, 1)
  auto q = (blocks / scale).round().clamp(-127, 127).to(at::kChar);
  auto tiles = q.view({Np / 16, 16, K / 32, 32 / per, per}).permute({0, 2, 3, 1, 4}).contiguous();
  auto scales = scale.view({Np / 16, 16, K / 32}).permute({0, 2, 1}).contiguous();  // (Np/16, K/32, 16)
  return {tiles.view({Np, K}), scales.view({-1})};
}

// x (.., K) bf16 for `op` (q8_linear, a8_linear) with a pack's (q, scale) and its real channels n,
// checked: (x contiguous, the (.., n) output, the rows)
inline std::tuple<at::Tensor, at::Tensor, int64_t> int8_call(const at::Tensor& x_, const at::Tensor& q,
                                                             const at::Tensor& scale, int64_t n, const char* op,
                                                             const char* pack) {
  TORCH_CHECK(x_.device().is_cpu() && x_.scalar_type() == at::kBFloat16, op, ": x must be a bf16 CPU tensor, got ",
              x_.scalar_type(), " on ", x_.device());
  TORCH_CHECK(q.scalar_type() == at::kChar && q.dim() == 2 && q.is_contiguous() && q.size(1) % 32 == 0 &&
                  scale.scalar_type() == at::kFloat && scale.is_contiguous() &&
                  scale.numel() == q.size(0) * (q.size(1) / 32) && q.size(0) % 16 == 0 && n > 0 && n <= q.size(0),
              op, ": weights must come from ", pack);
  const int64_t K = x_.size(-1);
  TORCH_CHECK(K == q.size(1), op, ": inputs of ", K, " for a weight of ", q.size(1));
  auto x = x_.contiguous();
  auto shape = x.sizes().vec();
  shape.back() = n;
  auto out = at::empty(shape, x.options());
  return {x, out, x.numel() / K};
}

}  // namespace llmforge
