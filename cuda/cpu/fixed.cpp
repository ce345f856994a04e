// Fixed-point encoding: a real x is the ring element round(x * 2^f), read back
// as a signed 64-bit integer divided by 2^f.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <string>

#include "internal.hpp"

namespace cg {

#include "../shared/fixed_checks.inc"

void encode_fixed(cg_ctx* ctx, cg_buf out, const double* host, u64 n, uint32_t f) {
  u64* o = encode_words(ctx, out, host, n, f);
  std::atomic<u64> first_bad{n};
  ctx->pool.parallel_for(n, kGrain, [&](u64 lo, u64 hi) {
    for (u64 i = lo; i < hi; i++) {
      if (!encode_value(host[i], f, o[i])) {
        u64 seen = first_bad.load();
        while (i < seen && !first_bad.compare_exchange_weak(seen, i)) {
        }
        return;
      }
    }
  });
  u64 bad = first_bad.load();
  if (bad < n) encode_range_error(host[bad], bad, f);
}

void decode_fixed(cg_ctx* ctx, double* host, cg_buf in, u64 n, uint32_t f) {
  const u64* x = decode_words(ctx, in, host, n, f);
  ctx->pool.parallel_for(n, kGrain, [&](u64 lo, u64 hi) {
    for (u64 i = lo; i < hi; i++) host[i] = decode_value(x[i], f);
  });
}

}  // namespace cg
