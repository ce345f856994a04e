// Internals shared by the CUDA build's translation units: the context, buffer
// handles, device memory, host staging and the error path. Entry points
// (api.cu) catch cg::Error and turn it into a status and a message; kernels are
// queued on the context's stream and checked at launch.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <mutex>
#include <string>
#include <vector>

// The ABI symbols are the only ones the library exports (-fvisibility=hidden).
#pragma GCC visibility push(default)
#include "../include/cryptgpu.h"
#pragma GCC visibility pop

#include "common.cuh"

namespace cg {

#include "../shared/errors.inc"

// A pinned host buffer for transfers; `done` is recorded after the last copy
// that touched it. A download holds a stage until its data is drained.
struct Stage {
  uint8_t* host = nullptr;
  size_t bytes = 0;
  cudaEvent_t done = nullptr;
  bool held = false;
};

}  // namespace cg

struct cg_ctx {
  std::mutex mu;
  int device = 0;
  int threads = 1;       // reported by cg_ctx_threads; host work is single-threaded
  uint64_t serial = 0;   // distinguishes contexts inside handles
  int sm_count = 1;
  size_t smem_optin = 0;  // the most dynamic shared memory a block may opt into
  cudaStream_t stream = nullptr;
  cudaMemPool_t pool = nullptr;  // null where the device has no stream-ordered allocator
  // Pinned host staging for transfers, grown as needed: a transfer takes a
  // stage whose last copy has finished, so it waits only when all are busy.
  std::vector<std::unique_ptr<cg::Stage>> stages;
  size_t staging_bytes = 0;
  // CG_METHOD_AUTO's choice forced by CRYPTGPU_CUDA_AUTO at creation (tests and
  // tuning); CG_METHOD_AUTO when unset.
  int32_t forced_method = CG_METHOD_AUTO;
  bool reserved = false;  // cg_reserve was called
#include "../shared/ctx_fields.inc"
};

namespace cg {

// Handle layout: serial (16 bits) | generation (16 bits) | slot + 1 (32 bits).
Buffer& lookup(cg_ctx* ctx, cg_buf handle, const char* what);
// The device words of a buffer, checked to hold at least off + words words.
u64* words_of(cg_ctx* ctx, cg_buf handle, u64 off, u64 words, const char* what);
const u64* cwords_of(cg_ctx* ctx, cg_buf handle, u64 off, u64 words, const char* what);

// Checked arithmetic for sizes computed from caller input.
u64 mul_checked(u64 a, u64 b, const char* what);

// A failed CUDA call as CG_EDEVICE, naming the function and the CUDA error.
void check_cuda(cudaError_t e, const char* what);
// Checks the launch just queued (bad configuration, no kernel image, or a
// fault of earlier work).
void check_launch(const char* what);

// Blocks for a grid-stride kernel over `items`, `block` threads each, and
// the kernel side of the stride loop, in 64 bits.
unsigned grid_for(const cg_ctx* ctx, u64 items, unsigned block);
__device__ __forceinline__ u64 thread_index() { return u64(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ u64 thread_count() { return u64(gridDim.x) * blockDim.x; }

// Device memory in stream order: usable by work queued after the call,
// released once the work queued before the free is done.
void* device_alloc(cg_ctx* ctx, size_t bytes);  // nullptr when out of memory
void device_free(cg_ctx* ctx, void* p);

// Temporary device memory for one call, freed in stream order at scope end
// (none for 0 bytes).
class Scratch {
 public:
  Scratch(cg_ctx* ctx, size_t bytes, const char* what);
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  cg_ctx* ctx_;
  void* p_;
};

// Host transfers through the pinned stages, in chunks. to_device calls
// fill(staging, byte offset, bytes) to produce each chunk (a copy, or the
// fixed-point encoding) and queues its copy; from_device waits for each chunk
// and hands it to drain(staging, byte offset, bytes). A throwing fill stops
// the transfer; chunks already queued stay queued.
using Fill = std::function<void(uint8_t* dst, size_t off, size_t bytes)>;
using Drain = std::function<void(const uint8_t* src, size_t off, size_t bytes)>;
void to_device(cg_ctx* ctx, void* dev, size_t bytes, const Fill& fill, const char* what);
void from_device(cg_ctx* ctx, const void* dev, size_t bytes, const Drain& drain, const char* what);
void release_stages(cg_ctx* ctx);

// Device-side helpers used by several topics.
void fill_words(cg_ctx* ctx, u64* dst, u64 words, u64 value, const char* what);

#include "../shared/entry_decls.inc"

}  // namespace cg
