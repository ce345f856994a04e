// Packed bit streams: gathering selected bits of fixed-width rows into a dense
// stream and scattering them back. These feed the prefix circuits of the
// secure comparison on millions of elements.
//
// Rows of one word whose selected bits tile a 32-bit half (w = 64 and count
// dividing 32: packing one bit per element, or the odd bits of a prefix
// level) take a fast path: a thread per input word compresses its bits and
// the lanes of a warp OR their fields together. Everything else goes word by
// word on the side that is written, so no two threads write the same word.
#include <string>

#include "bits.cuh"
#include "internal.cuh"

namespace cg {
namespace {

constexpr unsigned kBlock = 256;

// Gather with w = 64: input word e supplies bits [e * count, (e + 1) * count)
// of the dense stream, written as 32-bit halves by groups of 32 / count lanes.
// units = the halves of the dense words: the lanes past n supply zeros, which
// clears the unused high bits of the last word.
__global__ void gather_fast(uint32_t* out, const u64* in, u64 n, BitMasks m, unsigned count, u64 units) {
  const unsigned lane = threadIdx.x % 32, group = 32 / count;
  const u64 total = units * group;
  const u64 warps = u64(gridDim.x) * (blockDim.x / 32);
  // Warps step together, so that every lane reaches the shuffles.
  for (u64 base = (u64(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32) * 32; base < total; base += warps * 32) {
    const u64 e = base + lane;
    uint32_t v = e < n ? uint32_t(compress_bits(m, in[e])) : 0;
    v <<= count * (lane % group);
    for (unsigned off = 1; off < group; off *= 2) v |= __shfl_xor_sync(0xffffffffu, v, off);
    if (lane % group == 0 && e < total) out[e / group] = v;
  }
}

__global__ void scatter_fast(u64* out, const uint32_t* in, u64 n, BitMasks m, unsigned count) {
  for (u64 e = thread_index(); e < n; e += thread_count()) {
    const u64 pos = e * count;
    const u64 v = (in[pos >> 5] >> (pos & 31)) & low_mask(count);
    out[e] = (out[e] & ~m.mask) | expand_bits(m, v);
  }
}

__global__ void gather_generic(u64* out, const u64* in, BitRows r, u64 words) {
  for (u64 q = thread_index(); q < words; q += thread_count())
    out[q] = gather_word(r, in, q);
}

__global__ void scatter_generic(u64* out, const u64* in, BitRows r, u64 words) {
  for (u64 q = thread_index(); q < words; q += thread_count())
    out[q] = scatter_word(r, in, q, out[q]);
}

#include "../shared/bits_checks.inc"

// The selected bits of one 64-bit row.
u64 row_mask(uint32_t start, uint32_t step, uint32_t count) {
  u64 m = 0;
  for (u64 t = 0; t < count; t++) m |= u64(1) << (start + t * step);
  return m;
}

}  // namespace

void bits_gather(cg_ctx* ctx, cg_buf out, cg_buf in, u64 n, uint32_t w_in, uint32_t start, uint32_t step,
                 uint32_t count) {
  const char* fn = "cg_bits_gather";
  const u64* src;
  u64 *dst, sparse_words, dense_words;
  if (!check_bits(ctx, fn, "w_in", true, out, in, n, w_in, start, step, count, src, dst, sparse_words, dense_words)) return;
  if (w_in == 64 && 32 % count == 0) {
    const BitMasks m = bit_masks(row_mask(start, step, count));
    const u64 units = 2 * dense_words, lanes = units * (32 / count);
    gather_fast<<<grid_for(ctx, lanes, kBlock), kBlock, 0, ctx->stream>>>(reinterpret_cast<uint32_t*>(dst), src, n, m,
                                                                          count, units);
  } else {
    const BitRows r{n, w_in, start, step, count};
    gather_generic<<<grid_for(ctx, dense_words, kBlock), kBlock, 0, ctx->stream>>>(dst, src, r, dense_words);
  }
  check_launch(fn);
}

void bits_scatter(cg_ctx* ctx, cg_buf out, cg_buf in, u64 n, uint32_t w_out, uint32_t start, uint32_t step,
                  uint32_t count) {
  const char* fn = "cg_bits_scatter";
  const u64* src;
  u64 *dst, sparse_words, dense_words;
  if (!check_bits(ctx, fn, "w_out", false, out, in, n, w_out, start, step, count, src, dst, sparse_words,
                  dense_words))
    return;
  if (w_out == 64 && 32 % count == 0) {
    const BitMasks m = bit_masks(row_mask(start, step, count));
    scatter_fast<<<grid_for(ctx, n, kBlock), kBlock, 0, ctx->stream>>>(dst, reinterpret_cast<const uint32_t*>(src), n,
                                                                       m, count);
  } else {
    const BitRows r{n, w_out, start, step, count};
    scatter_generic<<<grid_for(ctx, sparse_words, kBlock), kBlock, 0, ctx->stream>>>(dst, src, r, sparse_words);
  }
  check_launch(fn);
}

}  // namespace cg
