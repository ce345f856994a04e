// Matrix products over Z_2^64: the naive reference loop and a packed, blocked,
// threaded kernel (GotoBLAS layout) whose AVX2 micro-kernel builds each 64-bit
// product from 32-bit multiplies, exact mod 2^64.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>

#include "internal.hpp"

namespace cg {
namespace {

// Micro-tile (registers), then the blocks that keep a packed B sliver in L1,
// a packed A block in L2 and a packed B panel in L3. Tuned on a 2-core Zen 3.
constexpr u64 MR = 2, NR = 8;
constexpr u64 KC = 512, MC = 32, NC = 1024;
// Below this many multiply-adds, waking the workers costs more than it saves.
constexpr u64 kSerialWork = u64(1) << 17;
// Splitting a matrix between threads repacks its operands once per part.
constexpr u64 kMinPart = 32;

#include "../shared/product.inc"

u64 round_up(u64 x, u64 to) { return (x + to - 1) / to * to; }
u64 ceil_div(u64 x, u64 y) { return (x + y - 1) / y; }

void naive(const u64* a, const u64* b, u64* c, u64 m, u64 n, u64 k, bool ta, bool tb, bool accumulate) {
  for (u64 i = 0; i < m; i++) {
    u64* ci = c + i * n;
    if (!accumulate) std::fill(ci, ci + n, u64(0));
    for (u64 p = 0; p < k; p++) {
      u64 aip = ta ? a[p * m + i] : a[i * k + p];
      if (tb) {
        for (u64 j = 0; j < n; j++) ci[j] += aip * b[j * k + p];
      } else {
        const u64* bp = b + p * n;
        for (u64 j = 0; j < n; j++) ci[j] += aip * bp[j];
      }
    }
  }
}

// Packs rows [i0, i0 + mc) x columns [p0, p0 + kc) of op(A) into MR-row
// slivers: sliver s holds, for each p, MR pairs (a, a rotated by 32 bits).
// Rows past m are zero.
void pack_a(u64* dst, const Product& g, const u64* a, u64 i0, u64 mc, u64 p0, u64 kc) {
  u64 rs = g.ta ? 1 : g.k, cs = g.ta ? g.m : 1;
  for (u64 s = 0; s < mc; s += MR) {
    for (u64 p = 0; p < kc; p++) {
      for (u64 i = 0; i < MR; i++) {
        u64 row = i0 + s + i;
        u64 v = s + i < mc ? a[row * rs + (p0 + p) * cs] : 0;
        dst[2 * i] = v;
        dst[2 * i + 1] = v >> 32 | v << 32;
      }
      dst += 2 * MR;
    }
  }
}

// Packs rows [p0, p0 + kc) x columns [j0, j0 + nc) of op(B) into NR-column
// slivers, row by row. Columns past the panel are zero.
void pack_b(u64* dst, const Product& g, const u64* b, u64 p0, u64 kc, u64 j0, u64 nc) {
  u64 rs = g.tb ? 1 : g.n, cs = g.tb ? g.k : 1;
  for (u64 t = 0; t < nc; t += NR) {
    u64 w = std::min(NR, nc - t);
    for (u64 p = 0; p < kc; p++) {
      const u64* src = b + (p0 + p) * rs + (j0 + t) * cs;
      for (u64 j = 0; j < w; j++) dst[j] = src[j * cs];
      for (u64 j = w; j < NR; j++) dst[j] = 0;
      dst += NR;
    }
  }
}

// c[MR x NR] (+)= packed A sliver . packed B sliver over kc.
using Kernel = void (*)(u64 kc, const u64* ap, const u64* bp, u64* c, u64 ldc, bool overwrite);

typedef u64 v4u __attribute__((vector_size(32)));
typedef uint32_t v8u __attribute__((vector_size(32)));

// a.b mod 2^64 = lo(a) lo(b) + 2^32 (lo(a) hi(b) + hi(a) lo(b)), and of the
// cross term only the low 32 bits matter. vpmuludq gives the first product in
// full; vpmulld of (hi(a), lo(a)) with (lo(b), hi(b)) gives both cross terms'
// low halves in the two 32-bit lanes, summed lane-wise mod 2^32 and folded
// together once at the end: 2 multiplies and 2 adds per 4 multiply-adds.
__attribute__((target("avx2"))) void kernel_avx2(u64 kc, const u64* ap, const u64* bp, u64* c, u64 ldc,
                                                 bool overwrite) {
  v4u lo[MR][NR / 4] = {};
  v8u cross[MR][NR / 4] = {};
  for (u64 p = 0; p < kc; p++) {
    __m256i b[NR / 4];
    for (u64 j = 0; j < NR / 4; j++) b[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + 4 * j));
    for (u64 i = 0; i < MR; i++) {
      __m256i a = _mm256_set1_epi64x(static_cast<long long>(ap[2 * i]));
      __m256i ar = _mm256_set1_epi64x(static_cast<long long>(ap[2 * i + 1]));
      for (u64 j = 0; j < NR / 4; j++) {
        lo[i][j] += reinterpret_cast<v4u>(_mm256_mul_epu32(a, b[j]));
        cross[i][j] += reinterpret_cast<v8u>(_mm256_mullo_epi32(ar, b[j]));
      }
    }
    ap += 2 * MR;
    bp += NR;
  }
  for (u64 i = 0; i < MR; i++) {
    for (u64 j = 0; j < NR / 4; j++) {
      v4u x = reinterpret_cast<v4u>(cross[i][j]);
      v4u r = lo[i][j] + ((x + (x >> 32)) << 32);
      auto* dst = reinterpret_cast<__m256i*>(c + i * ldc + 4 * j);
      if (!overwrite) r += reinterpret_cast<v4u>(_mm256_loadu_si256(dst));
      _mm256_storeu_si256(dst, reinterpret_cast<__m256i>(r));
    }
  }
}

// Any x86-64 (or other) CPU: the same packed layout, plain 64-bit multiplies.
void kernel_portable(u64 kc, const u64* ap, const u64* bp, u64* c, u64 ldc, bool overwrite) {
  u64 acc[MR][NR] = {};
  for (u64 p = 0; p < kc; p++) {
    for (u64 i = 0; i < MR; i++)
      for (u64 j = 0; j < NR; j++) acc[i][j] += ap[2 * i] * bp[j];
    ap += 2 * MR;
    bp += NR;
  }
  for (u64 i = 0; i < MR; i++)
    for (u64 j = 0; j < NR; j++) c[i * ldc + j] = overwrite ? acc[i][j] : c[i * ldc + j] + acc[i][j];
}

// c[mc x nc] (+)= packed A block . packed B panel; edge tiles go through a
// scratch tile so the kernel always writes whole MR x NR tiles.
void macro_kernel(Kernel kernel, u64 kc, const u64* ap, const u64* bp, u64* c, u64 ldc, u64 mc, u64 nc,
                  bool overwrite) {
  for (u64 j = 0; j < nc; j += NR) {
    const u64* bs = bp + j * kc;
    for (u64 i = 0; i < mc; i += MR) {
      const u64* as = ap + i * 2 * kc;
      u64* ct = c + i * ldc + j;
      if (i + MR <= mc && j + NR <= nc) {
        kernel(kc, as, bs, ct, ldc, overwrite);
        continue;
      }
      u64 tile[MR * NR];
      kernel(kc, as, bs, tile, NR, true);
      for (u64 r = 0; r < std::min(MR, mc - i); r++)
        for (u64 s = 0; s < std::min(NR, nc - j); s++)
          ct[r * ldc + s] = overwrite ? tile[r * NR + s] : ct[r * ldc + s] + tile[r * NR + s];
    }
  }
}

// Rows [i0, i1) x columns [j0, j1) of one batch entry, with per-thread scratch
// for one A block and one B panel.
void run_tile(Kernel kernel, const Product& g, u64 e, u64 i0, u64 i1, u64 j0, u64 j1, u64* apack, u64* bpack) {
  const u64* a = g.a + e * g.sa;
  const u64* b = g.b + e * g.sb;
  u64* c = g.c + e * g.sc;
  for (u64 jc = j0; jc < j1; jc += NC) {
    u64 nc = std::min(NC, j1 - jc);
    for (u64 pc = 0; pc < g.k; pc += KC) {
      u64 kc = std::min(KC, g.k - pc);
      pack_b(bpack, g, b, pc, kc, jc, nc);
      bool overwrite = pc == 0 && !g.accumulate;
      for (u64 ic = i0; ic < i1; ic += MC) {
        u64 mc = std::min(MC, i1 - ic);
        pack_a(apack, g, a, ic, mc, pc, kc);
        macro_kernel(kernel, kc, apack, bpack, c + ic * g.n + jc, g.n, mc, nc, overwrite);
      }
    }
  }
}

void fast(cg_ctx* ctx, const Product& g) {
  if (g.batch == 0 || g.m == 0 || g.n == 0) return;
  if (g.k == 0) {
    if (!g.accumulate)
      for (u64 e = 0; e < g.batch; e++) std::fill(g.c + e * g.sc, g.c + e * g.sc + g.m * g.n, u64(0));
    return;
  }
  Kernel kernel = has_avx2() ? kernel_avx2 : kernel_portable;
  u64 work;  // batch * m * n indexes C, so only the last factor can overflow
  bool small = !__builtin_mul_overflow(g.batch * g.m * g.n, g.k, &work) && work < kSerialWork;
  u64 workers = small ? 1 : u64(ctx->pool.threads());

  // Split each matrix into parts so that the tasks share out evenly across
  // the workers, never into parts narrower than kMinPart. A task packs all of
  // A for its columns and all of B for its rows, so cut the longer side: the
  // operand that is packed again is then the smaller one.
  u64 parts = 1;
  if (workers > 1)
    while (g.batch * parts < workers || (g.batch * parts % workers != 0 && g.batch * parts < 4 * workers)) parts++;
  auto cut = [](u64 want, u64 len) { return std::min(want, std::max<u64>(1, len / kMinPart)); };
  u64 pm, pn;
  if (g.n >= g.m) {
    pn = cut(parts, g.n);
    pm = cut(ceil_div(parts, pn), g.m);
  } else {
    pm = cut(parts, g.m);
    pn = cut(ceil_div(parts, pm), g.n);
  }
  u64 tn = round_up(ceil_div(g.n, pn), NR), tm = round_up(ceil_div(g.m, pm), MR);
  pn = ceil_div(g.n, tn);
  pm = ceil_div(g.m, tm);
  u64 tasks = g.batch * pm * pn;
  u64 slots = std::min(workers, tasks);

  u64 kc = std::min(KC, g.k);
  u64 a_words = round_up(std::min(MC, tm), MR) * kc * 2, b_words = kc * round_up(std::min(NC, tn), NR);
  std::unique_ptr<u64[]> scratch(new u64[slots * (a_words + b_words)]);
  std::atomic<u64> next{0};
  ctx->pool.parallel_for(slots, 1, [&](u64 s0, u64 s1) {
    for (u64 s = s0; s < s1; s++) {
      u64* apack = scratch.get() + s * (a_words + b_words);
      for (u64 t; (t = next.fetch_add(1)) < tasks;) {
        u64 e = t / (pm * pn), i = t / pn % pm, j = t % pn;
        run_tile(kernel, g, e, i * tm, std::min(g.m, (i + 1) * tm), j * tn, std::min(g.n, (j + 1) * tn), apack,
                 apack + a_words);
      }
    }
  });
}

void check_method(int32_t method, const char* fn) {
  switch (method) {
    case CG_METHOD_AUTO:
    case CG_METHOD_NAIVE:
    case CG_METHOD_DIRECT:
      return;
    case CG_METHOD_FP64:
      fail(CG_EUNSUPPORTED, std::string(fn) + ": method fp64 is only in the CUDA build");
    case CG_METHOD_INT8:
      fail(CG_EUNSUPPORTED, std::string(fn) + ": method int8 is only in the CUDA build");
    default:
      fail(CG_EINVAL, std::string(fn) + ": unknown method " + std::to_string(method));
  }
}

void run(cg_ctx* ctx, const Product& g, int32_t method) {
  if (method != CG_METHOD_NAIVE) return fast(ctx, g);
  for (u64 e = 0; e < g.batch; e++)
    naive(g.a + e * g.sa, g.b + e * g.sb, g.c + e * g.sc, g.m, g.n, g.k, g.ta, g.tb, g.accumulate);
}

}  // namespace

#include "../shared/matmul_checks.inc"

}  // namespace cg
