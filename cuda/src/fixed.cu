// Fixed-point encoding: a real x is the ring element round(x * 2^f), read back
// as a signed 64-bit integer divided by 2^f. The values arrive and leave as
// host doubles, so both directions convert on the host, chunk by chunk in the
// pinned staging buffers, with the same library calls as the CPU build: the
// words are the CPU build's, bit for bit.
#include <cmath>
#include <cstdio>
#include <string>

#include "internal.cuh"

namespace cg {

void encode_fixed(cg_ctx* ctx, cg_buf out, const double* host, u64 n, uint32_t f) {
  require(f <= 62, "cg_encode_fixed: fractional bits " + std::to_string(f) + " outside [0, 62]");
  if (n > 0 && !host) fail(CG_ENULL, "cg_encode_fixed: host array is NULL");
  u64* o = words_of(ctx, out, 0, n, "cg_encode_fixed (out)");
  const double limit = std::ldexp(1.0, 63);
  to_device(
      ctx, o, n * 8,
      [&](uint8_t* stage, size_t off, size_t bytes) {
        u64* w = reinterpret_cast<u64*>(stage);
        const u64 first = off / 8;
        for (u64 t = 0; t < bytes / 8; t++) {
          const u64 i = first + t;
          double v = std::round(std::ldexp(host[i], int(f)));  // ties away from zero
          if (!(v >= -limit && v < limit)) {                   // also catches NaN
            char value[64];
            snprintf(value, sizeof value, "%.17g", host[i]);
            fail(CG_ERANGE, "cg_encode_fixed: value " + std::string(value) + " at index " + std::to_string(i) +
                                " does not fit the ring with " + std::to_string(f) + " fractional bits");
          }
          w[t] = u64(i64(v));
        }
      },
      "cg_encode_fixed");
}

void decode_fixed(cg_ctx* ctx, double* host, cg_buf in, u64 n, uint32_t f) {
  require(f <= 62, "cg_decode_fixed: fractional bits " + std::to_string(f) + " outside [0, 62]");
  if (n > 0 && !host) fail(CG_ENULL, "cg_decode_fixed: host array is NULL");
  const u64* x = cwords_of(ctx, in, 0, n, "cg_decode_fixed (in)");
  from_device(
      ctx, x, n * 8,
      [&](const uint8_t* stage, size_t off, size_t bytes) {
        const u64* w = reinterpret_cast<const u64*>(stage);
        double* dst = host + off / 8;
        for (u64 t = 0; t < bytes / 8; t++) dst[t] = std::ldexp(double(i64(w[t])), -int(f));
      },
      "cg_decode_fixed");
}

}  // namespace cg
