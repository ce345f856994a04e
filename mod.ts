/**
 * cryptgpu: private inference and training among three servers over
 * 2-out-of-3 replicated secret sharing on Z_2^64.
 *
 * This module is the public library API.
 */
export { type Backend, type BackendOptions, type Conv2dGeometry, NativeBackend } from "./lib/native/backend.ts";
export { NativeError } from "./lib/native/errors.ts";
export { type Device, libraryExists, LibraryLoadError, libraryPath } from "./lib/native/library.ts";
export { type Conv2dOptions, type DType, outputShape, RingTensor } from "./lib/ring/tensor.ts";
export { keep, scope, scopeAsync } from "./lib/ring/scope.ts";
export { decodeFixed, encodeFixed, FIXED_DEFAULT_BITS } from "./lib/ring/fixed.ts";
