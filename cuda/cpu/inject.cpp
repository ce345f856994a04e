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
CG_CLONES void leader_rows(const inject::Args& a, u64 lo, u64 hi) {
  if (a.k != 1) {
    for (u64 i = lo; i < hi; i++) inject::leader_row(a, i);
    return;
  }
#pragma GCC ivdep
  for (u64 i = lo; i < hi; i++) {
    const u64 c = inject::leader_mask(a, i);
    a.out_b[i] = (c & 1) + a.s2[i];
    inject::leader_element(a, i, c);
  }
}
CG_CLONES void follower_rows(const inject::Args& a, u64 lo, u64 hi) {
  if (a.k != 1) {
    for (u64 i = lo; i < hi; i++) inject::follower_row(a, i);
    return;
  }
#pragma GCC ivdep
  for (u64 i = lo; i < hi; i++) inject::follower_element(a, i, inject::other_mask(a, i), a.B[i]);
}
CG_CLONES void helper_rows(const inject::Args& a, u64 lo, u64 hi) {
  if (a.k != 1) {
    for (u64 i = lo; i < hi; i++) inject::helper_row(a, i);
    return;
  }
#pragma GCC ivdep
  for (u64 i = lo; i < hi; i++) inject::helper_element(a, i, inject::other_mask(a, i), a.s2[i]);
}

}  // namespace

void bit_inject(cg_ctx* ctx, int32_t role, const cg_buf* bufs, uint32_t nbufs, u64 rows, u64 k, u64 bit_off,
                uint32_t flip) {
  const inject::Args a = inject::check(ctx, role, bufs, nbufs, rows, k, bit_off, flip);
  const u64 grain = std::max<u64>(1, kGrain / k);
  ctx->pool.parallel_for(rows, grain, [&](u64 lo, u64 hi) {
    if (role == CG_INJECT_LEADER) return leader_rows(a, lo, hi);
    if (role == CG_INJECT_FOLLOWER) return follower_rows(a, lo, hi);
    helper_rows(a, lo, hi);
  });
}

}  // namespace cg
