// The float embedding of the FP64 method (paper, Section II-B): a word is
// four 16-bit limbs, a . b = sum over i + j <= 3 of 2^(16 (i + j)) a_i b_j
// mod 2^64, and the limb products are summed exactly in FP64.
//
// Exactness: each output keeps four accumulators d_s = sum over i + j = s of
// a_i b_j, at most four products below 2^32 per step of the reduction. Over
// kFp64Chunk = 2^19 steps a sum stays below 4 * 2^19 * 2^32 = 2^53, and every
// partial sum is a non-negative integer below it, so each fused multiply-add
// is exact. Longer reductions run as several chunks, each converted to words
// and added mod 2^64.
#pragma once

#include "common.cuh"

namespace cg {

constexpr u64 kFp64Chunk = u64(1) << 19;

CG_HD double fp64_limb(u64 v, int l) { return double((v >> (16 * l)) & 0xffff); }

// sum 2^(16 s) d_s mod 2^64 from the four exact accumulators.
CG_HD u64 fp64_fold(const double d[4]) {
  u64 v = 0;
  for (int s = 0; s < 4; s++) v += u64(d[s]) << (16 * s);
  return v;
}

}  // namespace cg
