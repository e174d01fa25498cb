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
#endif

// w (N, K) as symmetric int8 per output channel and 32 inputs, N padded with zero channels to a
// multiple of 16: (q (Np, K/32, 32) int8, scale (Np, K/32, 1) float32 = max |w| / 127 of the 32)
inline std::tuple<at::Tensor, at::Tensor> quantize_groups(const at::Tensor& w_) {
  const int64_t N = w_.size(0), K = w_.size(1);
  const int64_t Np = (N + 15) / 16 * 16;
  auto w = at::zeros({Np, K}, w_.options().dtype(at::kFloat));
  w.narrow(0, 0, N).copy_(w_);
  auto blocks = w.view({Np, K / 32, 32});
  auto scale = blocks.abs().amax(2, true).clamp_min(1e-12) / 127.0;
  auto q = (blocks / scale).round().clamp(-127, 127).to(at::kChar);
  return {q, scale};
}

}  // namespace llmforge
