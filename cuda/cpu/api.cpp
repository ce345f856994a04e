// The extern "C" entry points of the CPU build: argument checks that need no
// kernel, the context lock, and the translation of cg::Error into a status
// and cg_last_error's message.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>

#include "internal.hpp"

using namespace cg;

namespace {

// Nothing to do on entry: the CPU build has one device.
void enter(cg_ctx*, const char*) {}
int32_t ctx_threads(cg_ctx* ctx) { return ctx->pool.threads(); }

#include "../shared/guards.inc"

std::string cpu_model() {
  FILE* f = std::fopen("/proc/cpuinfo", "r");
  if (!f) return "unknown CPU";
  char line[512];
  std::string model = "unknown CPU";
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "model name", 10) == 0) {
      const char* colon = std::strchr(line, ':');
      if (colon) {
        model = colon + 2;
        while (!model.empty() && (model.back() == '\n' || model.back() == ' ')) model.pop_back();
      }
      break;
    }
  }
  std::fclose(f);
  return model;
}

// 64-byte alignment for vector kernels; at least one word so data is never NULL.
void* new_allocation(cg_ctx* ctx, u64 words) { return block_alloc(ctx, block_bytes(words)); }
void release_allocation(cg_ctx* ctx, void* base, u64 base_words) { block_free(ctx, base, block_bytes(base_words)); }
const char* const kMemory = "";

#include "../shared/handles.inc"

}  // namespace

extern "C" {

const char* cg_build_info(void) {
  static const std::string info = [] {
    std::string s = "{\"abi\":" + std::to_string(CG_ABI_VERSION) + ",\"backend\":\"cpu\",\"compiler\":\"g++ " +
                    __VERSION__ + "\",\"features\":{\"avx2\":" + (has_avx2() ? "true" : "false") +
                    ",\"aesni\":" + (has_aesni() ? "true" : "false") + ",\"vaes\":" + (has_vaes() ? "true" : "false") +
                    ",\"bmi2\":" + (has_bmi2() ? "true" : "false") + ",\"fast_pext\":" +
                    (has_fast_pext() ? "true" : "false") + "}}";
    return s;
  }();
  return info.c_str();
}

int cg_device_count(int32_t* out) {
  if (!out) return CG_ENULL;
  *out = 1;
  return CG_OK;
}

int cg_device_info(int32_t device, char* buf, uint64_t len) {
  if (!buf) return CG_ENULL;
  if (device != 0) return CG_EINVAL;
  std::string s = "{\"index\":0,\"kind\":\"cpu\",\"name\":\"" + json_escape(cpu_model()) +
                  "\",\"cores\":" + std::to_string(std::thread::hardware_concurrency()) + "}";
  if (len == 0) return CG_EINVAL;
  std::snprintf(buf, len, "%s", s.c_str());
  return CG_OK;
}

int cg_ctx_create(int32_t device, int32_t threads, cg_ctx** out) {
  if (!out) return CG_ENULL;
  *out = nullptr;
  if (device != 0) {
    return set_create_error(CG_EINVAL,
                            "cg_ctx_create: the CPU build has one device, 0; asked for " + std::to_string(device));
  }
  int n = threads > 0 ? threads : int(std::thread::hardware_concurrency());
  try {
    *out = new cg_ctx(n, next_serial.fetch_add(1));
    return CG_OK;
  } catch (const std::exception& e) {
    return set_create_error(CG_ENOMEM, std::string("cg_ctx_create: ") + e.what());
  }
}

int cg_ctx_destroy(cg_ctx* ctx) {
  if (!ctx) return CG_ENULL;
  release_all(ctx);
  cache_clear(ctx);
  arena_release(ctx);
  delete ctx;
  return CG_OK;
}

int cg_sync(cg_ctx* ctx) {
  return guarded(ctx, "cg_sync", [] {});  // the CPU build finishes every call before returning
}

int cg_upload(cg_ctx* ctx, cg_buf dst, uint64_t dst_off, const void* host, uint64_t words) {
  return guarded(ctx, "cg_upload", [&] {
    if (words) require_ptr(host, "cg_upload", "host source");
    u64* d = words_of(ctx, dst, dst_off, words, "cg_upload");
    if (words) std::memcpy(d, host, words * 8);
  });
}

int cg_download(cg_ctx* ctx, cg_buf src, uint64_t src_off, void* host, uint64_t words) {
  return guarded(ctx, "cg_download", [&] {
    if (words) require_ptr(host, "cg_download", "host destination");
    const u64* s = cwords_of(ctx, src, src_off, words, "cg_download");
    if (words) std::memcpy(host, s, words * 8);
  });
}

int cg_copy(cg_ctx* ctx, cg_buf dst, uint64_t dst_off, cg_buf src, uint64_t src_off, uint64_t words) {
  return guarded(ctx, "cg_copy", [&] {
    u64* d;
    const u64* s;
    if (!copy_ranges(ctx, dst, dst_off, src, src_off, words, d, s)) return;
    ctx->pool.parallel_for(words, 1 << 17, [&](u64 lo, u64 hi) { std::memcpy(d + lo, s + lo, (hi - lo) * 8); });
  });
}

int cg_fill(cg_ctx* ctx, cg_buf dst, uint64_t dst_off, uint64_t words, uint64_t value) {
  return guarded(ctx, "cg_fill", [&] {
    u64* d = words_of(ctx, dst, dst_off, words, "cg_fill");
    ctx->pool.parallel_for(words, kGrain, [&](u64 lo, u64 hi) {
      for (u64 i = lo; i < hi; i++) d[i] = value;
    });
  });
}

int cg_host_pointer(cg_ctx* ctx, cg_buf buf, void** out) {
  return guarded(ctx, "cg_host_pointer", [&] {
    require_ptr(out, "cg_host_pointer", "out");
    *out = lookup(ctx, buf, "cg_host_pointer").data;
  });
}

#include "../shared/kernel_entries.inc"

}  // extern "C"
