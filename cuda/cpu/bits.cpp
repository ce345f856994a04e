// Packed bit streams: gathering selected bits of fixed-width rows into a dense
// stream and scattering them back. These feed the prefix circuits of the
// secure comparison, so the common shapes (a word per element, one bit or
// every other bit) get straight-line loops, and the rest move up to 64 bits
// per step through 64-bit windows.
#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <string>

#include "internal.hpp"

namespace cg {
namespace {

inline u64 low_mask(unsigned len) { return len >= 64 ? ~u64(0) : (u64(1) << len) - 1; }

// Bits [pos, pos + len) of a stream, len in [1, 64], reading only the words
// they lie in (the word after may be past the end of the buffer).
inline u64 load_bits(const u64* s, u64 pos, unsigned len) {
  const u64 i = pos >> 6;
  const unsigned sh = pos & 63;
  u64 v = s[i] >> sh;
  if (sh + len > 64) v |= s[i + 1] << (64 - sh);
  return v & low_mask(len);
}

// Replaces the bits of a stream under mask << pos with v (v within mask);
// mask lies within the low `span` bits.
inline void store_bits(u64* s, u64 pos, unsigned span, u64 mask, u64 v) {
  const u64 i = pos >> 6;
  const unsigned sh = pos & 63;
  s[i] = (s[i] & ~(mask << sh)) | (v << sh);
  if (sh + span > 64) s[i + 1] = (s[i + 1] & ~(mask >> (64 - sh))) | (v >> (64 - sh));
}

// Appends fields to a stream that starts on a word boundary; flush writes the
// last, partial word with its unused high bits zero.
class BitWriter {
 public:
  explicit BitWriter(u64* p) : p_(p) {}
  // v < 2^len, len in [1, 64].
  void put(u64 v, unsigned len) {
    acc_ |= v << fill_;
    fill_ += len;
    if (fill_ >= 64) {
      *p_++ = acc_;
      fill_ -= 64;
      acc_ = fill_ ? v >> (len - fill_) : 0;
    }
  }
  void flush() {
    if (fill_) *p_ = acc_;
  }

 private:
  u64* p_;
  u64 acc_ = 0;
  unsigned fill_ = 0;
};

// Three ways to compress the bits of x under a fixed mask to the bottom
// (pext) and to expand the bottom bits back under the mask (pdep).

// A single run of ones: a shift.
struct Contiguous {
  explicit Contiguous(u64 mask) : shift(__builtin_ctzll(mask)), low(mask >> shift) {}
  u64 compress(u64 x) const { return (x >> shift) & low; }
  u64 expand(u64 x) const { return (x & low) << shift; }
  unsigned shift;
  u64 low;
};

struct Bmi2 {
  explicit Bmi2(u64 mask) : mask(mask) {}
  __attribute__((target("bmi2"))) u64 compress(u64 x) const { return _pext_u64(x, mask); }
  __attribute__((target("bmi2"))) u64 expand(u64 x) const { return _pdep_u64(x, mask); }
  u64 mask;
};

// Hacker's Delight, sections 7-4 and 7-5: stage i moves the bits that have an
// odd multiple of 2^i zeros of the mask below them right by 2^i. The stage
// masks depend on the mask only.
struct Software {
  explicit Software(u64 m) : mask(m) {
    u64 zeros_right = ~m << 1;
    for (int i = 0; i < 6; i++) {
      u64 odd = zeros_right ^ (zeros_right << 1);  // parallel prefix parity
      for (int s = 2; s < 64; s <<= 1) odd ^= odd << s;
      move[i] = odd & m;
      m = (m ^ move[i]) | (move[i] >> (1 << i));
      zeros_right &= ~odd;
    }
  }
  u64 compress(u64 x) const {
    x &= mask;
    for (int i = 0; i < 6; i++) {
      const u64 t = x & move[i];
      x = (x ^ t) | (t >> (1 << i));
    }
    return x;
  }
  // x must be below 2^popcount(mask).
  u64 expand(u64 x) const {
    for (int i = 5; i >= 0; i--) x = (x & ~move[i]) | ((x << (1 << i)) & move[i]);
    return x & mask;
  }
  u64 mask;
  u64 move[6];
};

// One call's geometry. The selected bits of a row are cut into fields of
// `per` bits whose span (from first to last bit) is at most 64, so that each
// field is one 64-bit window; only when count > per (wide rows) is there more
// than one, and the last may be shorter.
struct Rows {
  const u64* in;
  u64* out;
  u64 w;           // bits per row on the sparse side
  unsigned start;  // first selected bit of a row
  unsigned count;  // selected bits per row (the dense side's row width)
  unsigned per, span;
  u64 mask;    // a full field's bits, relative to its first bit
  u64 stride;  // first bit of one field to the next: per * step
  unsigned last, last_span;
  u64 last_mask;
};

// A word per element with fields that tile a word exactly: each output word
// takes 64 / count whole elements.
inline bool word_rows(const Rows& r) { return r.w == 64 && 64 % r.count == 0; }

template <class Ops>
void gather_range(const Rows& r, u64 e0, u64 e1) {
  if (word_rows(r)) {
    const Ops ops(r.mask << r.start);
    const unsigned per_word = 64 / r.count;
    u64* out = r.out + e0 / per_word;
    for (u64 e = e0; e < e1; e += per_word) {
      const u64 k = std::min<u64>(per_word, e1 - e);
      u64 acc = 0;
      for (u64 i = 0; i < k; i++) acc |= ops.compress(r.in[e + i]) << (i * r.count);
      *out++ = acc;
    }
    return;
  }
  const Ops full(r.mask), last(r.last_mask);
  BitWriter out(r.out + e0 * r.count / 64);
  for (u64 e = e0; e < e1; e++) {
    u64 pos = e * r.w + r.start;
    for (u64 t = r.per; t < r.count; t += r.per, pos += r.stride)
      out.put(full.compress(load_bits(r.in, pos, r.span)), r.per);
    out.put(last.compress(load_bits(r.in, pos, r.last_span)), r.last);
  }
  out.flush();
}

template <class Ops>
void scatter_range(const Rows& r, u64 e0, u64 e1) {
  if (word_rows(r)) {
    const Ops ops(r.mask << r.start);
    const u64 keep = ~(r.mask << r.start), low = low_mask(r.count);
    const unsigned per_word = 64 / r.count;
    const u64* in = r.in + e0 / per_word;
    for (u64 e = e0; e < e1; e += per_word) {
      const u64 x = *in++, k = std::min<u64>(per_word, e1 - e);
      for (u64 i = 0; i < k; i++) r.out[e + i] = (r.out[e + i] & keep) | ops.expand((x >> (i * r.count)) & low);
    }
    return;
  }
  const Ops full(r.mask), last(r.last_mask);
  for (u64 e = e0; e < e1; e++) {
    u64 pos = e * r.w + r.start, src = e * r.count;
    for (u64 t = r.per; t < r.count; t += r.per, pos += r.stride, src += r.per)
      store_bits(r.out, pos, r.span, r.mask, full.expand(load_bits(r.in, src, r.per)));
    store_bits(r.out, pos, r.last_span, r.last_mask, last.expand(load_bits(r.in, src, r.last)));
  }
}

// flatten inlines the templates, and with them pext/pdep, into a BMI2 body.
__attribute__((target("bmi2"), flatten)) void gather_bmi2(const Rows& r, u64 e0, u64 e1) {
  gather_range<Bmi2>(r, e0, e1);
}
__attribute__((target("bmi2"), flatten)) void scatter_bmi2(const Rows& r, u64 e0, u64 e1) {
  scatter_range<Bmi2>(r, e0, e1);
}

// pext and pdep are microcoded on AMD before Zen 3 (family 19h), far slower
// than the software stages.
bool fast_pext() {
  static const bool v = [] {
    if (!has_bmi2()) return false;
    unsigned a = 0, b = 0, c = 0, d = 0;
    __get_cpuid(0, &a, &b, &c, &d);
    const bool amd = b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163;  // "AuthenticAMD"
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned family = (a >> 8) & 0xf;
    if (family == 0xf) family += (a >> 20) & 0xff;
    return !amd || family >= 0x19;
  }();
  return v;
}

using RangeFn = void (*)(const Rows&, u64, u64);

// Validates a call and fills in its geometry. The sparse side (rows of w bits)
// is `in` for a gather and `out` for a scatter.
Rows plan(cg_ctx* ctx, const char* fn, const char* w_name, bool gather, cg_buf out, cg_buf in, u64 n, uint32_t w,
          uint32_t start, uint32_t step, uint32_t count) {
  const std::string what(fn);
  require(w >= 1, what + ": " + w_name + " must be at least 1");
  require(step >= 1, what + ": step must be at least 1");
  if (count >= 1) {
    const u64 last_bit = start + u64(count - 1) * step;
    require(last_bit < w, what + ": start + (count - 1) * step = " + std::to_string(last_bit) + " must be less than " +
                              w_name + " = " + std::to_string(w));
  }
  const u64 sparse_bits = mul_checked(n, w, fn), dense_bits = mul_checked(n, count, fn);
  const u64 sparse_words = sparse_bits / 64 + (sparse_bits % 64 != 0);
  const u64 dense_words = dense_bits / 64 + (dense_bits % 64 != 0);

  Rows r{};
  r.in = cwords_of(ctx, in, 0, gather ? sparse_words : dense_words, fn);
  r.out = words_of(ctx, out, 0, gather ? dense_words : sparse_words, fn);
  require(out != in, what + ": out must not alias in");
  if (count == 0) return r;

  r.w = w;
  r.start = start;
  r.count = count;
  r.per = step > 63 ? 1 : std::min<unsigned>(count, 63 / step + 1);
  r.stride = u64(r.per) * step;
  auto field = [step](unsigned bits, unsigned& span, u64& mask) {
    span = (bits - 1) * step + 1;
    mask = 0;
    for (unsigned t = 0; t < bits; t++) mask |= u64(1) << (t * step);
  };
  field(r.per, r.span, r.mask);
  r.last = count - (count - 1) / r.per * r.per;
  field(r.last, r.last_span, r.last_mask);
  return r;
}

// Runs fn over [0, n) in chunks whose boundaries fall on word boundaries of
// both streams, so that no two threads write the same word.
void run(cg_ctx* ctx, const Rows& r, u64 n, RangeFn fn) {
  const u64 align = u64(64) >> std::min({__builtin_ctzll(r.w), __builtin_ctz(r.count), 6});
  const u64 units = n / align + (n % align != 0);
  const u64 grain = std::max<u64>(1, (kGrain * 4) / align);
  ctx->pool.parallel_for(units, grain, [&](u64 u0, u64 u1) { fn(r, u0 * align, u1 == units ? n : u1 * align); });
}

// The field masks are runs of ones when step is 1 or a field is one bit.
RangeFn pick(const Rows& r, RangeFn contiguous, RangeFn bmi2, RangeFn software) {
  if (r.per == 1 || r.mask == low_mask(r.per)) return contiguous;
  return fast_pext() ? bmi2 : software;
}

}  // namespace

void bits_gather(cg_ctx* ctx, cg_buf out, cg_buf in, u64 n, uint32_t w_in, uint32_t start, uint32_t step,
                 uint32_t count) {
  const Rows r = plan(ctx, "cg_bits_gather", "w_in", true, out, in, n, w_in, start, step, count);
  if (n == 0 || count == 0) return;
  run(ctx, r, n, pick(r, gather_range<Contiguous>, gather_bmi2, gather_range<Software>));
}

void bits_scatter(cg_ctx* ctx, cg_buf out, cg_buf in, u64 n, uint32_t w_out, uint32_t start, uint32_t step,
                  uint32_t count) {
  const Rows r = plan(ctx, "cg_bits_scatter", "w_out", false, out, in, n, w_out, start, step, count);
  if (n == 0 || count == 0) return;
  run(ctx, r, n, pick(r, scatter_range<Contiguous>, scatter_bmi2, scatter_range<Software>));
}

}  // namespace cg
