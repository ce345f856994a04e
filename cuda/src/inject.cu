// The local step of a bit injection's third (cg_bit_inject): the algebra is
// shared/inject.inc; here a thread computes a row.
#include <string>

#include "internal.cuh"

namespace cg {

#include "../shared/inject.inc"

namespace {

constexpr unsigned kBlock = 256;

__global__ void inject_kernel(inject::Args a, int32_t role) {
  for (u64 i = thread_index(); i < a.rows; i += thread_count()) {
    if (role == CG_INJECT_LEADER)
      inject::Leader::row(a, i, a.k);
    else if (role == CG_INJECT_FOLLOWER)
      inject::Follower::row(a, i, a.k);
    else
      inject::Helper::row(a, i, a.k);
  }
}

}  // namespace

void bit_inject(cg_ctx* ctx, int32_t role, const cg_buf* bufs, uint32_t nbufs, u64 rows, u64 k, u64 bit_off,
                uint32_t flip) {
  const inject::Args a = inject::check(ctx, role, bufs, nbufs, rows, k, bit_off, flip);
  if (rows == 0) return;
  inject_kernel<<<grid_for(ctx, rows, kBlock), kBlock, 0, ctx->stream>>>(a, role);
  check_launch("cg_bit_inject");
}

}  // namespace cg
