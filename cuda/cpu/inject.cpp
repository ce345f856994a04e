// The local step of a bit injection's third (cg_bit_inject): the algebra is
// shared/inject.inc; here it runs over rows, vectorised per role.
#include <string>

#include "internal.hpp"

namespace cg {

#include "../shared/inject.inc"

namespace {

// One bit per element (k = 1, as in ReLU) is a flat loop the compiler
// vectorises (ivdep: outputs never alias inputs, cg_bit_inject checks the
// handles); wider rows go row by row.
template <class Role>
CG_CLONES void each_row(const inject::Args& a, u64 lo, u64 hi) {
  if (a.k != 1) {
    for (u64 i = lo; i < hi; i++) Role::row(a, i, a.k);
    return;
  }
#pragma GCC ivdep
  for (u64 i = lo; i < hi; i++) Role::row(a, i, 1);
}

}  // namespace

void bit_inject(cg_ctx* ctx, int32_t role, const cg_buf* bufs, uint32_t nbufs, u64 rows, u64 k, u64 bit_off,
                uint32_t flip) {
  const inject::Args a = inject::check(ctx, role, bufs, nbufs, rows, k, bit_off, flip);
  const u64 grain = std::max<u64>(1, kGrain / k);
  ctx->pool.parallel_for(rows, grain, [&](u64 lo, u64 hi) {
    if (role == CG_INJECT_LEADER) return each_row<inject::Leader>(a, lo, hi);
    if (role == CG_INJECT_FOLLOWER) return each_row<inject::Follower>(a, lo, hi);
    each_row<inject::Helper>(a, lo, hi);
  });
}

}  // namespace cg
