// Internals shared by the CPU build's translation units: the context, buffer
// handles, the thread pool and the error path. Kernels throw cg::Error; the ABI
// entry points (api.cpp) catch it and turn it into a status and a message.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <thread>
#include <vector>

// The ABI symbols are the only ones the library exports (-fvisibility=hidden).
#pragma GCC visibility push(default)
#include "../include/cryptgpu.h"
#pragma GCC visibility pop

namespace cg {

using u64 = uint64_t;
using i64 = int64_t;

#include "../shared/errors.inc"

// A fixed pool of worker threads owned by one context. parallel_for splits
// [0, n) into contiguous chunks, runs them on the workers and the calling
// thread, and returns when all are done. Calls are serialised by the context
// lock, so one job is in flight at a time.
class Pool {
 public:
  explicit Pool(int threads);
  ~Pool();
  int threads() const { return threads_; }
  // fn(begin, end) over chunks of at least `grain` indices.
  void parallel_for(u64 n, u64 grain, const std::function<void(u64, u64)>& fn);

 private:
  void worker(int index);
  Error run_chunks(const std::function<void(u64, u64)>& fn, u64 n, u64 chunks);
  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(u64, u64)>* job_ = nullptr;
  u64 job_n_ = 0, job_chunks_ = 0;
  std::atomic<u64> next_chunk_{0};
  int pending_ = 0;
  Error error_{CG_OK, ""};  // the first failure of a worker in the current job
  u64 generation_ = 0;
  bool stop_ = false;
};

}  // namespace cg

struct cg_ctx {
  cg_ctx(int threads, uint64_t serial) : pool(threads), serial(serial) {}
  std::mutex mu;
  cg::Pool pool;
  uint64_t serial;  // distinguishes contexts inside handles
#include "../shared/ctx_fields.inc"
  // Freed blocks kept for reuse, by size: protocols free and allocate
  // same-sized temporaries all the time, and fresh pages cost a page fault each.
  std::unordered_map<size_t, std::vector<void*>> cache;
  size_t cached_bytes = 0;
  // cg_reserve's pages, touched in advance: blocks are cut from the front and,
  // once freed, live in the cache like any other (never handed to free()).
  char* arena = nullptr;
  size_t arena_bytes = 0, arena_used = 0;
};

namespace cg {

// A hot loop built for AVX-512 (x86-64-v4), AVX2 (v3) and the baseline, the
// best the CPU has picked when the library loads: one build runs anywhere.
#define CG_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

// Handle layout: serial (16 bits) | generation (16 bits) | slot + 1 (32 bits).
Buffer& lookup(cg_ctx* ctx, cg_buf handle, const char* what);
// The words of a buffer, checked to hold at least off + words words.
u64* words_of(cg_ctx* ctx, cg_buf handle, u64 off, u64 words, const char* what);
const u64* cwords_of(cg_ctx* ctx, cg_buf handle, u64 off, u64 words, const char* what);

// Host memory blocks through the context's cache (64-byte aligned).
void* block_alloc(cg_ctx* ctx, size_t bytes);
void block_free(cg_ctx* ctx, void* p, size_t bytes);
void cache_clear(cg_ctx* ctx);
// cg_reserve's work: maps and touches the context's arena; arena_release unmaps it.
void reserve_memory(cg_ctx* ctx, size_t bytes);
void arena_release(cg_ctx* ctx);
size_t block_bytes(u64 words);

// Checked arithmetic for sizes computed from caller input.
u64 mul_checked(u64 a, u64 b, const char* what);

// Chunk size for elementwise work: large enough that waking threads pays off.
constexpr u64 kGrain = 1 << 15;

// CPU feature flags, probed once.
bool has_avx2();
bool has_aesni();
bool has_bmi2();
bool has_vaes();
bool has_fast_pext();

#include "../shared/entry_decls.inc"

// The AES-128 key schedule (constant-time), and AES of the n counter blocks
// (hi, lo + j) into out, by AES-NI/VAES (`hardware`) or the bitsliced kernel.
void aes128_expand_key(const uint8_t* key, uint8_t (*rk)[16]);
void aes128_blocks(const uint8_t (*rk)[16], bool hardware, u64 hi, u64 lo, u64 n, uint8_t* out);
bool has_pclmul();
bool has_vpclmul();

}  // namespace cg
