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

#include "../shared/fixed_checks.inc"

void encode_fixed(cg_ctx* ctx, cg_buf out, const double* host, u64 n, uint32_t f) {
  u64* o = encode_words(ctx, out, host, n, f);
  to_device(
      ctx, o, n * 8,
      [&](uint8_t* stage, size_t off, size_t bytes) {
        u64* w = reinterpret_cast<u64*>(stage);
        const u64 first = off / 8;
        for (u64 t = 0; t < bytes / 8; t++)
          if (!encode_value(host[first + t], f, w[t])) encode_range_error(host[first + t], first + t, f);
      },
      "cg_encode_fixed");
}

void decode_fixed(cg_ctx* ctx, double* host, cg_buf in, u64 n, uint32_t f) {
  const u64* x = decode_words(ctx, in, host, n, f);
  from_device(
      ctx, x, n * 8,
      [&](const uint8_t* stage, size_t off, size_t bytes) {
        const u64* w = reinterpret_cast<const u64*>(stage);
        double* dst = host + off / 8;
        for (u64 t = 0; t < bytes / 8; t++) dst[t] = decode_value(w[t], f);
      },
      "cg_decode_fixed");
}

}  // namespace cg
