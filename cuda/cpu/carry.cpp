// One level of a parallel-prefix carry (cg_carry_and, cg_carry_merge): the
// word algebra is shared/carry.inc; here it runs over the output words.
#include <string>

#include "internal.hpp"

namespace cg {

#include "../shared/carry.inc"

// Each layout's body is a branch-free loop the compiler vectorises (CG_CLONES:
// the unit algebra is shifts and masks, which wide vectors run several times
// faster; ivdep: out never aliases an input, the checks refuse it). The last
// output word, which may be partial, goes through the general path.
namespace {

CG_CLONES void and_words(const carry::AndArgs& a, u64 lo, u64 hi) {
#pragma GCC ivdep
  for (u64 i = lo; i < hi; i++) a.out[i] = carry::words_and(a.p0[i], a.p1[i], a.g0[i], a.g1[i]) ^ a.r0[i] ^ a.r1[i];
}

CG_CLONES void and_units(const carry::AndArgs& a, u64 lo, u64 hi) {
#pragma GCC ivdep
  for (u64 i = lo; i < hi; i++) {
    const u64 v =
        carry::units_and(a.p0[2 * i], a.p1[2 * i]) | carry::units_and(a.p0[2 * i + 1], a.p1[2 * i + 1]) << 32;
    a.out[i] = v ^ a.r0[i] ^ a.r1[i];
  }
}

CG_CLONES void merge_words(const carry::MergeArgs& m, u64 lo, u64 hi) {
#pragma GCC ivdep
  for (u64 i = lo; i < hi; i++) m.out[i] = carry::words_g_hi(m.a[i]) ^ m.z[i];
}

CG_CLONES void merge_units(const carry::MergeArgs& m, u64 lo, u64 hi) {
#pragma GCC ivdep
  for (u64 i = lo; i < hi; i++)
    m.out[i] = (carry::units_g_hi(m.a[2 * i]) | carry::units_g_hi(m.a[2 * i + 1]) << 32) ^ m.z[i];
}

}  // namespace

void carry_and(cg_ctx* ctx, int32_t layout, cg_buf out, cg_buf p0, cg_buf p1, cg_buf g0, cg_buf g1, cg_buf r0,
               cg_buf r1, u64 n) {
  const carry::AndArgs a = carry::check_and(ctx, layout, out, p0, p1, g0, g1, r0, r1, n);
  const carry::Level& l = a.level;
  ctx->pool.parallel_for(l.whole(), kGrain / 2,
                         [&](u64 lo, u64 hi) { l.words ? and_words(a, lo, hi) : and_units(a, lo, hi); });
  for (u64 i = l.whole(); i < l.out_words; i++)
    a.out[i] = (l.and_word(a.p0, a.p1, a.g0, a.g1, i) ^ a.r0[i] ^ a.r1[i]) & l.mask(i);
}

void carry_merge(cg_ctx* ctx, int32_t layout, cg_buf out, cg_buf a, cg_buf z, u64 n) {
  const carry::MergeArgs m = carry::check_merge(ctx, layout, out, a, z, n);
  const carry::Level& l = m.level;
  ctx->pool.parallel_for(l.whole(), kGrain / 2,
                         [&](u64 lo, u64 hi) { l.words ? merge_words(m, lo, hi) : merge_units(m, lo, hi); });
  for (u64 i = l.whole(); i < l.out_words; i++) m.out[i] = (l.g_hi_word(m.a, i) ^ m.z[i]) & l.mask(i);
}

}  // namespace cg
