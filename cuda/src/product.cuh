// The description of one (batched) product and the element and tile
// addressing the kernels share with the host-side checks.
#pragma once

#include "common.cuh"

namespace cg {

#include "../shared/product.inc"

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
