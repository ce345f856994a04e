// AES-128 in counter mode on the GPU, the PRF behind correlated randomness:
// one counter block per thread and step, T-table rounds from shared memory.
//
// The table is replicated once per bank: lane l reads entry x at word
// 32 x + l, which always lies in bank l. No two lanes ever touch the same
// bank, so the time of a lookup does not depend on the (secret) index. The
// table itself is built from the arithmetic S-box by every block, and the key
// schedule runs on the host through the same table-free S-box.
#include <string>

#include "aes.cuh"
#include "internal.cuh"

namespace cg {
namespace {

constexpr unsigned kBlock = 256;
// Resident blocks per SM: the 32 KiB table allows about six or seven.
constexpr unsigned kBlocksPerSm = 6;

__global__ void __launch_bounds__(kBlock) ctr_kernel(u64* out, u64 words, AesKey key, u64 hi, u64 lo) {
  __shared__ u32 table[256 * 32];
  const unsigned lane = threadIdx.x % 32;
  for (unsigned x = threadIdx.x; x < 256; x += blockDim.x) {
    const u32 v = aes_t0(x);
    for (unsigned c = 0; c < 32; c++) table[x * 32 + (x + c) % 32] = v;  // rotated start: no bank conflicts
  }
  __syncthreads();
  const auto t = [&](u32 x) { return table[x * 32 + lane]; };
  const u64 blocks = words / 2 + (words & 1);
  for (u64 j = thread_index(); j < blocks; j += thread_count()) {
    u64 w0, w1;
    aes_ctr_block(key, hi, lo, j, t, w0, w1);
    out[2 * j] = w0;
    if (2 * j + 1 < words) out[2 * j + 1] = w1;  // an odd count drops the last half block
  }
}

}  // namespace

void aes128_ctr(cg_ctx* ctx, cg_buf out, u64 out_off, u64 words, const uint8_t* key, const uint8_t* iv,
                int32_t impl) {
  if (key == nullptr) fail(CG_ENULL, "cg_aes128_ctr: key is NULL");
  if (iv == nullptr) fail(CG_ENULL, "cg_aes128_ctr: iv is NULL");
  // Every implementation name means the GPU kernel in this build.
  if (impl != CG_AES_AUTO && impl != CG_AES_PORTABLE && impl != CG_AES_NI)
    fail(CG_EINVAL, "cg_aes128_ctr: unknown impl " + std::to_string(impl));
  u64* dst = words_of(ctx, out, out_off, words, "cg_aes128_ctr");
  if (words == 0) return;
  const AesKey k = aes_expand_key(key);
  u64 hi = 0, lo = 0;
  for (int i = 0; i < 8; i++) {
    hi = hi << 8 | iv[i];
    lo = lo << 8 | iv[8 + i];
  }
  const u64 blocks = words / 2 + (words & 1);
  const unsigned grid = unsigned(min_u64(ceil_div(blocks, kBlock), u64(ctx->sm_count) * kBlocksPerSm));
  ctr_kernel<<<grid, kBlock, 0, ctx->stream>>>(dst, words, k, hi, lo);
  check_launch("cg_aes128_ctr");
}

}  // namespace cg
