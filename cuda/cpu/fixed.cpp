// Fixed-point encoding: a real x is the ring element round(x * 2^f), read back
// as a signed 64-bit integer divided by 2^f.
#include <atomic>
#include <cmath>
#include <string>

#include "internal.hpp"

namespace cg {

void encode_fixed(cg_ctx* ctx, cg_buf out, const double* host, u64 n, uint32_t f) {
  require(f <= 62, "cg_encode_fixed: fractional bits " + std::to_string(f) + " outside [0, 62]");
  if (n > 0 && !host) fail(CG_ENULL, "cg_encode_fixed: host array is NULL");
  u64* o = words_of(ctx, out, 0, n, "cg_encode_fixed (out)");
  const double limit = std::ldexp(1.0, 63);
  std::atomic<u64> first_bad{n};
  ctx->pool.parallel_for(n, kGrain, [&](u64 lo, u64 hi) {
    for (u64 i = lo; i < hi; i++) {
      double v = std::round(std::ldexp(host[i], int(f)));  // ties away from zero
      if (!(v >= -limit && v < limit)) {                   // also catches NaN
        u64 seen = first_bad.load();
        while (i < seen && !first_bad.compare_exchange_weak(seen, i)) {
        }
        return;
      }
      o[i] = u64(i64(v));
    }
  });
  u64 bad = first_bad.load();
  if (bad < n) {
    char value[64];
    snprintf(value, sizeof value, "%.17g", host[bad]);
    fail(CG_ERANGE, "cg_encode_fixed: value " + std::string(value) + " at index " + std::to_string(bad) +
                        " does not fit the ring with " + std::to_string(f) + " fractional bits");
  }
}

void decode_fixed(cg_ctx* ctx, double* host, cg_buf in, u64 n, uint32_t f) {
  require(f <= 62, "cg_decode_fixed: fractional bits " + std::to_string(f) + " outside [0, 62]");
  if (n > 0 && !host) fail(CG_ENULL, "cg_decode_fixed: host array is NULL");
  const u64* x = cwords_of(ctx, in, 0, n, "cg_decode_fixed (in)");
  ctx->pool.parallel_for(n, kGrain, [&](u64 lo, u64 hi) {
    for (u64 i = lo; i < hi; i++) host[i] = std::ldexp(double(i64(x[i])), -int(f));
  });
}

}  // namespace cg
