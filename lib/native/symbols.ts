/**
 * The C ABI of `cuda/include/cryptgpu.h`, one entry per function, for
 * `Deno.dlopen`. Handles and sizes are `u64` and are passed as bigint, which
 * keeps calls on Deno's fast FFI path; arrays travel as `buffer`.
 */
export const symbols = {
  cg_build_info: { parameters: [], result: "pointer" },
  cg_device_count: { parameters: ["buffer"], result: "i32" },
  cg_device_info: { parameters: ["i32", "buffer", "u64"], result: "i32" },

  cg_ctx_create: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  cg_ctx_destroy: { parameters: ["pointer"], result: "i32" },
  cg_last_error: { parameters: ["pointer"], result: "pointer" },
  cg_sync: { parameters: ["pointer"], result: "i32", nonblocking: true },
  cg_live_buffers: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  cg_ctx_threads: { parameters: ["pointer", "buffer"], result: "i32" },
  cg_reserve: { parameters: ["pointer", "u64"], result: "i32" },

  cg_alloc: { parameters: ["pointer", "u64", "buffer"], result: "i32" },
  cg_free: { parameters: ["pointer", "u64"], result: "i32" },
  cg_view: { parameters: ["pointer", "u64", "u64", "u64", "buffer"], result: "i32" },
  cg_buf_words: { parameters: ["pointer", "u64", "buffer"], result: "i32" },
  cg_upload: { parameters: ["pointer", "u64", "u64", "buffer", "u64"], result: "i32" },
  cg_download: { parameters: ["pointer", "u64", "u64", "buffer", "u64"], result: "i32" },
  cg_copy: { parameters: ["pointer", "u64", "u64", "u64", "u64", "u64"], result: "i32" },
  cg_fill: { parameters: ["pointer", "u64", "u64", "u64", "u64"], result: "i32" },
  cg_host_pointer: { parameters: ["pointer", "u64", "buffer"], result: "i32" },

  cg_binary: { parameters: ["pointer", "i32", "u64", "u64", "u64", "u64", "u64", "u64"], result: "i32" },
  cg_scalar: { parameters: ["pointer", "i32", "u64", "u64", "u64", "u64"], result: "i32" },
  cg_unary: { parameters: ["pointer", "i32", "u64", "u64", "u64", "u32"], result: "i32" },

  cg_replicated_product: {
    parameters: ["pointer", "i32", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64"],
    result: "i32",
  },
  cg_copy_strided: {
    parameters: ["pointer", "u64", "u64", "buffer", "u64", "u64", "buffer", "buffer", "u32"],
    result: "i32",
  },
  cg_sum_axis: { parameters: ["pointer", "u64", "u64", "u64", "u64", "u64"], result: "i32" },
  cg_im2col: { parameters: ["pointer", "u64", "u64", "buffer"], result: "i32" },
  cg_col2im: { parameters: ["pointer", "u64", "u64", "buffer"], result: "i32" },

  cg_matmul: {
    parameters: ["pointer", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u32", "i32"],
    result: "i32",
  },
  cg_conv2d_forward: { parameters: ["pointer", "u64", "u64", "u64", "buffer", "u32"], result: "i32" },
  cg_conv2d_backward_input: { parameters: ["pointer", "u64", "u64", "u64", "buffer", "u32"], result: "i32" },
  cg_conv2d_backward_weight: { parameters: ["pointer", "u64", "u64", "u64", "buffer", "u32"], result: "i32" },
  cg_sumpool2d_forward: { parameters: ["pointer", "u64", "u64", "buffer"], result: "i32" },
  cg_sumpool2d_backward: { parameters: ["pointer", "u64", "u64", "buffer"], result: "i32" },

  cg_bits_gather: { parameters: ["pointer", "u64", "u64", "u64", "u32", "u32", "u32", "u32"], result: "i32" },
  cg_bits_scatter: { parameters: ["pointer", "u64", "u64", "u64", "u32", "u32", "u32", "u32"], result: "i32" },

  cg_carry_and: {
    parameters: ["pointer", "i32", "u64", "u64", "u64", "u64", "u64", "u64", "u64", "u64"],
    result: "i32",
  },
  cg_carry_merge: { parameters: ["pointer", "i32", "u64", "u64", "u64", "u64"], result: "i32" },
  cg_bit_inject: { parameters: ["pointer", "i32", "buffer", "u32", "u64", "u64", "u64", "u32"], result: "i32" },

  cg_aes128_ctr: { parameters: ["pointer", "u64", "u64", "u64", "buffer", "buffer", "i32"], result: "i32" },

  cg_encode_fixed: { parameters: ["pointer", "u64", "buffer", "u64", "u32"], result: "i32" },
  cg_decode_fixed: { parameters: ["pointer", "buffer", "u64", "u64", "u32"], result: "i32" },
} as const;

export type NativeLib = Deno.DynamicLibrary<typeof symbols>;

/** Status codes of `cg_status`, by value. */
export const statusNames = [
  "CG_OK",
  "CG_EINVAL",
  "CG_EHANDLE",
  "CG_ENOMEM",
  "CG_ENULL",
  "CG_EDEVICE",
  "CG_ERANGE",
  "CG_EUNSUPPORTED",
  "CG_EINTERNAL",
] as const;

export const BinaryOp = { add: 0, sub: 1, mul: 2, xor: 3, and: 4, or: 5, rsub: 6 } as const;
export type BinaryOp = keyof typeof BinaryOp;
export const UnaryOp = { neg: 0, not: 1, shl: 2, shr: 3, sar: 4, bit: 5 } as const;
export type UnaryOp = keyof typeof UnaryOp;
export const MatmulFlag = { transA: 1, transB: 2, bcastA: 4, bcastB: 8, accumulate: 16 } as const;
export const Method = { auto: 0, naive: 1, direct: 2, fp64: 3, int8: 4 } as const;
export type Method = keyof typeof Method;
/** cg_carry_layout: the first level on propagate/generate words, the later ones on packed units. */
export const CarryLayout = { words: 0, units: 1 } as const;
export type CarryLayout = keyof typeof CarryLayout;
/** cg_inject_role: the three roles of a bit injection's third. */
export const InjectRole = { leader: 0, follower: 1, helper: 2 } as const;
export type InjectRole = keyof typeof InjectRole;
export const AesImpl = { auto: 0, portable: 1, aesni: 2 } as const;
export type AesImpl = keyof typeof AesImpl;
export const MAX_DIMS = 8;
