// Packed bit streams: gathering selected bits of fixed-width rows into a dense
// stream and scattering them back. These feed the prefix circuits of the
// secure comparison on millions of elements.
//
// The selected bits of a stream of rows repeat with a period of w / gcd(w, 64)
// words, and gather keeps their order, so for rows up to kMaxPeriod words a
// gather is one pext per input word against a small table of masks, and a
// scatter one pdep per output word. Wider rows are walked field by field.
#include <immintrin.h>

#include <algorithm>
#include <string>
#include <vector>

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
  // v < 2^len, len in [0, 64].
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

// Takes fields from a stream that starts on a word boundary, reading each
// word only once the fields reach it.
class BitReader {
 public:
  explicit BitReader(const u64* p) : p_(p) {}
  // len in [0, 64].
  u64 get(unsigned len) {
    if (len <= avail_) {
      const u64 v = cur_ & low_mask(len);
      cur_ = len < 64 ? cur_ >> len : 0;
      avail_ -= len;
      return v;
    }
    const u64 next = *p_++;
    const u64 v = (cur_ | next << avail_) & low_mask(len);
    const unsigned used = len - avail_;
    cur_ = used < 64 ? next >> used : 0;
    avail_ = 64 - used;
    return v;
  }

 private:
  const u64* p_;
  u64 cur_ = 0;  // the next avail_ bits, the rest zero
  unsigned avail_ = 0;
};

// Three ways to compress the bits of x under a fixed mask to the bottom
// (pext) and to expand the bottom bits back under the mask (pdep).

// An empty mask or a single run of ones: a shift.
struct Contiguous {
  explicit Contiguous(u64 mask) : shift(mask ? __builtin_ctzll(mask) : 0), low(mask >> shift) {}
  static bool fits(u64 mask) {
    const u64 low = mask ? mask >> __builtin_ctzll(mask) : 0;
    return (low & (low + 1)) == 0;
  }
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

// Longest period, in words, worth a table of masks.
constexpr u64 kMaxPeriod = 1024;

// One call's validated geometry. The sparse side holds rows of w bits, the
// dense side rows of count bits.
struct Rows {
  const u64* in;
  u64* out;
  u64 w;
  unsigned start, count;
  // Narrow rows: the selected bits of each word of one period.
  std::vector<u64> period;
  // Wide rows: the selected bits of a row cut into fields of `per` bits whose
  // span (first to last bit) is at most 64, so that each is one 64-bit
  // window; the last field may be shorter.
  unsigned per, span, last, last_span;
  u64 mask, last_mask;  // a field's bits, relative to its first bit
  u64 stride;           // first bit of one field to the next: per * step
};

template <class Ops>
struct Word {
  explicit Word(u64 mask) : ops(mask), mask(mask), bits(__builtin_popcountll(mask)) {}
  Ops ops;
  u64 mask;
  unsigned bits;
};

// A call with its masks turned into one kind of Ops, built once per call.
template <class Ops>
struct Job {
  explicit Job(const Rows& r) : r(r), full(r.mask), last(r.last_mask) {
    for (u64 m : r.period) period.emplace_back(m);
  }
  const Rows& r;
  std::vector<Word<Ops>> period;
  Ops full, last;
};

// Every word holds the same selected bits, and they fill a dense word
// exactly: the common case, done without a bit cursor.
template <class Ops>
bool tiles(const Job<Ops>& j) {
  return j.period.size() == 1 && 64 % j.period[0].bits == 0;
}

// Rows [e0, e1) start and end on word boundaries of both streams, except that
// e1 may be the last row; a row boundary on a word boundary is a period start.
template <class Ops>
void gather_range(const Job<Ops>& j, u64 e0, u64 e1) {
  const Rows& r = j.r;
  u64* dense = r.out + e0 * r.count / 64;
  if (!j.period.empty()) {
    const u64 end = e1 * r.w, whole = end / 64;
    const Word<Ops>* p = j.period.data();
    const u64 n_period = j.period.size();
    u64 i = e0 * r.w / 64, k = 0;
    if (tiles(j)) {
      const unsigned per_word = 64 / p->bits;
      for (; i + per_word <= whole; i += per_word) {
        u64 acc = 0;
        for (unsigned q = 0; q < per_word; q++) acc |= p->ops.compress(r.in[i + q]) << (q * p->bits);
        *dense++ = acc;
      }
    }
    BitWriter out(dense);
    for (; i < whole; i++) {
      out.put(p[k].ops.compress(r.in[i]), p[k].bits);
      if (++k == n_period) k = 0;
    }
    if (end % 64) {  // the stream ends inside this word
      const Word<Ops> tail(p[k].mask & low_mask(end % 64));
      out.put(tail.ops.compress(r.in[i]), tail.bits);
    }
    out.flush();
  } else {
    BitWriter out(dense);
    for (u64 e = e0; e < e1; e++) {
      u64 pos = e * r.w + r.start;
      for (u64 t = r.per; t < r.count; t += r.per, pos += r.stride)
        out.put(j.full.compress(load_bits(r.in, pos, r.span)), r.per);
      out.put(j.last.compress(load_bits(r.in, pos, r.last_span)), r.last);
    }
    out.flush();
  }
}

template <class Ops>
void scatter_range(const Job<Ops>& j, u64 e0, u64 e1) {
  const Rows& r = j.r;
  if (!j.period.empty()) {
    const u64* dense = r.in + e0 * r.count / 64;
    const u64 end = e1 * r.w, whole = end / 64;
    const Word<Ops>* p = j.period.data();
    const u64 n_period = j.period.size();
    u64 i = e0 * r.w / 64, k = 0;
    if (tiles(j)) {
      const unsigned per_word = 64 / p->bits;
      const u64 low = low_mask(p->bits);
      for (; i + per_word <= whole; i += per_word) {
        const u64 x = *dense++;
        for (unsigned q = 0; q < per_word; q++)
          r.out[i + q] = (r.out[i + q] & ~p->mask) | p->ops.expand((x >> (q * p->bits)) & low);
      }
    }
    BitReader in(dense);
    for (; i < whole; i++) {
      r.out[i] = (r.out[i] & ~p[k].mask) | p[k].ops.expand(in.get(p[k].bits));
      if (++k == n_period) k = 0;
    }
    if (end % 64) {
      const Word<Ops> tail(p[k].mask & low_mask(end % 64));
      r.out[i] = (r.out[i] & ~tail.mask) | tail.ops.expand(in.get(tail.bits));
    }
  } else {
    for (u64 e = e0; e < e1; e++) {
      u64 pos = e * r.w + r.start, src = e * r.count;
      for (u64 t = r.per; t < r.count; t += r.per, pos += r.stride, src += r.per)
        store_bits(r.out, pos, r.span, r.mask, j.full.expand(load_bits(r.in, src, r.per)));
      store_bits(r.out, pos, r.last_span, r.last_mask, j.last.expand(load_bits(r.in, src, r.last)));
    }
  }
}

// flatten inlines the templates, and with them pext/pdep, into a BMI2 body.
__attribute__((target("bmi2"), flatten)) void gather_bmi2(const Job<Bmi2>& j, u64 e0, u64 e1) {
  gather_range(j, e0, e1);
}
__attribute__((target("bmi2"), flatten)) void scatter_bmi2(const Job<Bmi2>& j, u64 e0, u64 e1) {
  scatter_range(j, e0, e1);
}

#include "../shared/bits_checks.inc"

// Validates a call (check_bits) and works out its geometry. Returns false for
// a call with nothing to do.
bool plan(cg_ctx* ctx, const char* fn, const char* w_name, bool gather, cg_buf out, cg_buf in, u64 n, uint32_t w,
          uint32_t start, uint32_t step, uint32_t count, Rows& r) {
  u64 sparse_words, dense_words;
  if (!check_bits(ctx, fn, w_name, gather, out, in, n, w, start, step, count, r.in, r.out, sparse_words, dense_words))
    return false;

  r.w = w;
  r.start = start;
  r.count = count;
  const unsigned twos = std::min(__builtin_ctz(w), 6);
  const u64 period_words = w >> twos, period_rows = 64 >> twos;
  if (period_words <= kMaxPeriod) {
    r.period.assign(period_words, 0);
    for (u64 e = 0; e < period_rows; e++)
      for (u64 t = 0, bit = e * w + start; t < count; t++, bit += step) r.period[bit / 64] |= u64(1) << (bit % 64);
  }
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
  return true;
}

// Runs range(job, e0, e1) over the rows in chunks that start on word
// boundaries of both streams, so that no two threads write the same word.
template <class Ops, class Range>
void run(cg_ctx* ctx, const Rows& r, u64 n, Range range) {
  const Job<Ops> job(r);
  const u64 align = u64(64) >> std::min({__builtin_ctzll(r.w), __builtin_ctz(r.count), 6});
  const u64 units = n / align + (n % align != 0);
  // A chunk covers at least 2^20 sparse bits: waking a thread costs more
  // than moving fewer.
  const u64 grain = std::max<u64>(1, (u64(1) << 20) / (align * r.w));
  ctx->pool.parallel_for(units, grain, [&](u64 u0, u64 u1) { range(job, u0 * align, u1 == units ? n : u1 * align); });
}

// Shifts when every mask is a run of ones (one bit per row, or step 1 in
// whole words), else pext where it is fast.
enum class Kind { contiguous, bmi2, software };
Kind pick(const Rows& r) {
  bool runs = !r.period.empty() || (Contiguous::fits(r.mask) && Contiguous::fits(r.last_mask));
  for (u64 m : r.period) runs = runs && Contiguous::fits(m);
  if (runs) return Kind::contiguous;
  return has_fast_pext() ? Kind::bmi2 : Kind::software;
}

// One bit of every word (w = 64, count = 1: a sign bit, a packBit): 64 input
// words make an output word. With AVX2, bit k shifted to the top of each
// lane and read with movemask, four words an instruction, where the general
// path moves one bit a word through the writer.
void pack_bit_words(u64* out, const u64* in, unsigned k, u64 w0, u64 w1) {
  for (u64 w = w0; w < w1; w++) {
    const u64* x = in + 64 * w;
    u64 acc = 0;
    for (unsigned b = 0; b < 64; b++) acc |= ((x[b] >> k) & 1) << b;
    out[w] = acc;
  }
}

__attribute__((target("avx2"))) void pack_bit_words_avx2(u64* out, const u64* in, unsigned k, u64 w0, u64 w1) {
  const __m128i up = _mm_cvtsi32_si128(int(63 - k));
  for (u64 w = w0; w < w1; w++) {
    const u64* x = in + 64 * w;
    u64 acc = 0;
    for (unsigned b = 0; b < 64; b += 4) {
      const __m256i v = _mm256_sll_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + b)), up);
      acc |= u64(unsigned(_mm256_movemask_pd(_mm256_castsi256_pd(v)))) << b;
    }
    out[w] = acc;
  }
}

void pack_bit(cg_ctx* ctx, u64* out, const u64* in, u64 n, unsigned k) {
  const u64 whole = n / 64;
  const auto words = has_avx2() ? pack_bit_words_avx2 : pack_bit_words;
  ctx->pool.parallel_for(whole, kGrain / 64, [&](u64 w0, u64 w1) { words(out, in, k, w0, w1); });
  if (n % 64) {
    u64 acc = 0;
    for (u64 b = 0; b < n % 64; b++) acc |= ((in[64 * whole + b] >> k) & 1) << b;
    out[whole] = acc;
  }
}

}  // namespace

void bits_gather(cg_ctx* ctx, cg_buf out, cg_buf in, u64 n, uint32_t w_in, uint32_t start, uint32_t step,
                 uint32_t count) {
  Rows r{};
  if (!plan(ctx, "cg_bits_gather", "w_in", true, out, in, n, w_in, start, step, count, r)) return;
  if (w_in == 64 && count == 1) return pack_bit(ctx, r.out, r.in, n, start);
  switch (pick(r)) {
    case Kind::contiguous:
      return run<Contiguous>(ctx, r, n, gather_range<Contiguous>);
    case Kind::bmi2:
      return run<Bmi2>(ctx, r, n, gather_bmi2);
    case Kind::software:
      return run<Software>(ctx, r, n, gather_range<Software>);
  }
}

void bits_scatter(cg_ctx* ctx, cg_buf out, cg_buf in, u64 n, uint32_t w_out, uint32_t start, uint32_t step,
                  uint32_t count) {
  Rows r{};
  if (!plan(ctx, "cg_bits_scatter", "w_out", false, out, in, n, w_out, start, step, count, r)) return;
  switch (pick(r)) {
    case Kind::contiguous:
      return run<Contiguous>(ctx, r, n, scatter_range<Contiguous>);
    case Kind::bmi2:
      return run<Bmi2>(ctx, r, n, scatter_bmi2);
    case Kind::software:
      return run<Software>(ctx, r, n, scatter_range<Software>);
  }
}

}  // namespace cg
