// The description of one (batched) product and the element and tile
// addressing the kernels share with the host-side checks.
#pragma once

#include "common.cuh"

namespace cg {

// A batched product on device pointers: entry e reads a + e * sa and
// b + e * sb and writes c + e * sc (a stride of 0 broadcasts). op(A) is m x k
// (stored k x m with ta), op(B) is k x n (stored n x k with tb), C is m x n.
struct Product {
  const u64* a;
  const u64* b;
  u64* c;
  u64 m, n, k;
  bool ta, tb, accumulate;
  u64 batch, sa, sb, sc;
};

CG_HD u64 a_at(const Product& g, const u64* a, u64 i, u64 p) { return g.ta ? a[p * g.m + i] : a[i * g.k + p]; }
CG_HD u64 b_at(const Product& g, const u64* b, u64 p, u64 j) { return g.tb ? b[j * g.k + p] : b[p * g.n + j]; }

// The element of a tile (`tile` rows or columns x `slice` reduction indices)
// that load slot q fetches: consecutive slots walk the direction that is
// contiguous in memory, so a warp's loads coalesce.
CG_HD void tile_slot(unsigned q, unsigned tile, unsigned slice, bool x_contiguous, unsigned& x, unsigned& kk) {
  x = x_contiguous ? q % tile : q / slice;
  kk = x_contiguous ? q / tile : q % slice;
}

}  // namespace cg
