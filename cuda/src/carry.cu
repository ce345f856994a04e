// One level of a parallel-prefix carry (cg_carry_and, cg_carry_merge): the
// word algebra is shared/carry.inc; here a thread computes an output word.
#include <string>

#include "internal.cuh"

namespace cg {

#include "../shared/carry.inc"

namespace {

constexpr unsigned kBlock = 256;

__global__ void and_kernel(carry::AndArgs a) {
  for (u64 i = thread_index(); i < a.level.out_words; i += thread_count())
    a.out[i] = (a.level.and_word(a.p0, a.p1, a.g0, a.g1, i) ^ a.r0[i] ^ a.r1[i]) & a.level.mask(i);
}

__global__ void merge_kernel(carry::MergeArgs m) {
  for (u64 i = thread_index(); i < m.level.out_words; i += thread_count())
    m.out[i] = (m.level.g_hi_word(m.a, i) ^ m.z[i]) & m.level.mask(i);
}

}  // namespace

void carry_and(cg_ctx* ctx, int32_t layout, cg_buf out, cg_buf p0, cg_buf p1, cg_buf g0, cg_buf g1, cg_buf r0,
               cg_buf r1, u64 n) {
  const carry::AndArgs a = carry::check_and(ctx, layout, out, p0, p1, g0, g1, r0, r1, n);
  if (a.level.out_words == 0) return;
  and_kernel<<<grid_for(ctx, a.level.out_words, kBlock), kBlock, 0, ctx->stream>>>(a);
  check_launch("cg_carry_and");
}

void carry_merge(cg_ctx* ctx, int32_t layout, cg_buf out, cg_buf a, cg_buf z, u64 n) {
  const carry::MergeArgs m = carry::check_merge(ctx, layout, out, a, z, n);
  if (m.level.out_words == 0) return;
  merge_kernel<<<grid_for(ctx, m.level.out_words, kBlock), kBlock, 0, ctx->stream>>>(m);
  check_launch("cg_carry_merge");
}

}  // namespace cg
