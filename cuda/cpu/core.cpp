// The context's machinery: the thread pool, buffer handles, CPU features.
#include <sys/mman.h>
#include <cpuid.h>

#include <algorithm>
#include <cstdlib>

#include <new>
#include <string>

#include "internal.hpp"

namespace cg {

Pool::Pool(int threads) : threads_(threads < 1 ? 1 : threads) {
  for (int i = 1; i < threads_; i++) workers_.emplace_back([this, i] { worker(i); });
}

Pool::~Pool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void Pool::worker(int) {
  u64 seen = 0;
  for (;;) {
    const std::function<void(u64, u64)>* job;
    u64 n, chunks;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      n = job_n_;
      chunks = job_chunks_;
    }
    Error error = run_chunks(*job, n, chunks);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (error.status != CG_OK && error_.status == CG_OK) error_ = error;
      if (--pending_ == 0) done_.notify_one();
    }
  }
}

void Pool::parallel_for(u64 n, u64 grain, const std::function<void(u64, u64)>& fn) {
  if (n == 0) return;
  if (grain < 1) grain = 1;
  u64 chunks = n / grain;
  if (chunks > u64(threads_) * 4) chunks = u64(threads_) * 4;
  if (chunks <= 1 || threads_ == 1) {
    fn(0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    job_n_ = n;
    job_chunks_ = chunks;
    next_chunk_.store(0);
    pending_ = threads_ - 1;
    generation_++;
  }
  wake_.notify_all();
  // The calling thread takes chunks too; a failure here must still wait for
  // the workers, which hold a pointer to fn.
  Error error = run_chunks(fn, n, chunks);
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return pending_ == 0; });
  job_ = nullptr;
  if (error.status == CG_OK) error = error_;
  error_ = Error{CG_OK, ""};
  if (error.status != CG_OK) throw error;
}

// Takes chunks until none are left. A failing chunk stops this thread's share;
// the error travels back to the caller instead of ending the process.
Error Pool::run_chunks(const std::function<void(u64, u64)>& fn, u64 n, u64 chunks) {
  try {
    for (u64 c; (c = next_chunk_.fetch_add(1)) < chunks;) fn(c * n / chunks, (c + 1) * n / chunks);
  } catch (const Error& e) {
    return e;
  } catch (const std::bad_alloc&) {
    return Error{CG_ENOMEM, "out of host memory in a worker thread"};
  } catch (const std::exception& e) {
    return Error{CG_EINTERNAL, std::string("internal error in a worker thread: ") + e.what()};
  }
  return Error{CG_OK, ""};
}

#include "../shared/buffer_checks.inc"

// At most this much freed memory stays cached per context.
constexpr size_t kCacheLimit = size_t(1) << 30;

size_t block_bytes(u64 words) { return ((std::max<u64>(words, 1) * 8 + 63) / 64) * 64; }

static bool in_arena(const cg_ctx* ctx, const void* p) {
  const char* c = static_cast<const char*>(p);
  return ctx->arena && c >= ctx->arena && c < ctx->arena + ctx->arena_bytes;
}

void* block_alloc(cg_ctx* ctx, size_t bytes) {
  auto it = ctx->cache.find(bytes);
  if (it != ctx->cache.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    ctx->cached_bytes -= bytes;
    return p;
  }
  if (ctx->arena_bytes - ctx->arena_used >= bytes) {  // block_bytes keeps every block a multiple of 64
    void* p = ctx->arena + ctx->arena_used;
    ctx->arena_used += bytes;
    return p;
  }
  void* p = std::aligned_alloc(64, bytes);
  if (!p && ctx->cached_bytes) {  // give the cache back and try once more
    cache_clear(ctx);
    p = std::aligned_alloc(64, bytes);
  }
  return p;
}

void block_free(cg_ctx* ctx, void* p, size_t bytes) {
  if (in_arena(ctx, p)) {  // the arena's blocks stay cached, outside the limit: their pages are the arena's anyway
    ctx->cache[bytes].push_back(p);
    ctx->cached_bytes += bytes;
    return;
  }
  if (bytes > kCacheLimit / 4) {
    std::free(p);
    return;
  }
  if (ctx->cached_bytes + bytes > kCacheLimit) cache_clear(ctx);
  if (ctx->cached_bytes + bytes > kCacheLimit) {  // the arena's cached blocks alone fill the limit
    std::free(p);
    return;
  }
  ctx->cache[bytes].push_back(p);
  ctx->cached_bytes += bytes;
}

void cache_clear(cg_ctx* ctx) {
  // The arena's blocks are kept: cut once, they can only be reused from here.
  size_t kept = 0;
  for (auto& [bytes, blocks] : ctx->cache) {
    std::vector<void*> own;
    for (void* p : blocks) {
      if (in_arena(ctx, p)) own.push_back(p);
      else std::free(p);
    }
    kept += own.size() * bytes;
    blocks = std::move(own);
  }
  ctx->cached_bytes = kept;
}

void reserve_memory(cg_ctx* ctx, size_t bytes) {
  if (bytes == 0) return;
  if (ctx->arena) fail(CG_EINVAL, "cg_reserve: this context already has its reserved memory");
  bytes = (bytes + 4095) / 4096 * 4096;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail(CG_ENOMEM, "cg_reserve: cannot map " + std::to_string(bytes) + " bytes");
  madvise(p, bytes, MADV_HUGEPAGE);  // fewer, larger faults where transparent huge pages are allowed; a hint only
  volatile char* c = static_cast<volatile char*>(p);
  for (size_t i = 0; i < bytes; i += 4096) c[i] = 0;
  ctx->arena = static_cast<char*>(p);
  ctx->arena_bytes = bytes;
  ctx->arena_used = 0;
}

void arena_release(cg_ctx* ctx) {
  if (ctx->arena) munmap(ctx->arena, ctx->arena_bytes);
  ctx->arena = nullptr;
  ctx->arena_bytes = ctx->arena_used = 0;
}

static unsigned cpuid_reg(unsigned leaf, unsigned sub, int reg) {
  unsigned r[4] = {0, 0, 0, 0};
  if (!__get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3])) return 0;
  return r[reg];
}

static bool os_saves_ymm() {
  if (!(cpuid_reg(1, 0, 2) & (1u << 27))) return false;  // OSXSAVE
  unsigned lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 6) == 6;
}

bool has_avx2() {
  static const bool v = os_saves_ymm() && (cpuid_reg(7, 0, 1) & (1u << 5));
  return v;
}
bool has_aesni() {
  static const bool v = (cpuid_reg(1, 0, 2) & (1u << 25)) && (cpuid_reg(1, 0, 2) & (1u << 19));  // AES, SSE4.1
  return v;
}
bool has_pclmul() {
  static const bool v = cpuid_reg(1, 0, 2) & (1u << 1);
  return v;
}
bool has_vpclmul() {
  static const bool v = has_avx2() && (cpuid_reg(7, 0, 2) & (1u << 10));
  return v;
}
bool has_bmi2() {
  static const bool v = cpuid_reg(7, 0, 1) & (1u << 8);
  return v;
}
bool has_vaes() {
  static const bool v = has_avx2() && (cpuid_reg(7, 0, 2) & (1u << 9));
  return v;
}
// pext and pdep are microcoded on AMD before Zen 3 (family 19h), far slower
// than the software path.
bool has_fast_pext() {
  static const bool v = [] {
    if (!has_bmi2()) return false;
    const bool amd = cpuid_reg(0, 0, 1) == 0x68747541 && cpuid_reg(0, 0, 3) == 0x69746e65 &&
                     cpuid_reg(0, 0, 2) == 0x444d4163;  // "AuthenticAMD"
    unsigned eax = cpuid_reg(1, 0, 0), family = (eax >> 8) & 0xf;
    if (family == 0xf) family += (eax >> 20) & 0xff;
    return !amd || family >= 0x19;
  }();
  return v;
}

}  // namespace cg
