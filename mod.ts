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
export {
  bytesToUnit,
  type Dataset,
  DatasetError,
  datasetSize,
  type LoadOptions,
  sampleSize,
  type Split,
} from "./lib/data/dataset.ts";
export { type DatasetFormat, detectFormat, EMBEDDED_DATASETS, loadDataset } from "./lib/data/load.ts";
export { EMBEDDED_MNIST_SIZE, EMBEDDED_MNIST_TRAIN, loadEmbeddedMnist } from "./lib/data/embedded.ts";
export { findIdxFile, loadMnistDir, parseIdxImages, parseIdxLabels } from "./lib/data/mnist.ts";
export { checkCifarBatch, CIFAR_RECORD_BYTES, loadCifarDir, loadCifarFile } from "./lib/data/cifar.ts";
export { loadTinyImagenetDir } from "./lib/data/tiny_imagenet.ts";
export { decodeImage, type RgbImage, SUPPORTED_IMAGE_FORMATS } from "./lib/data/images.ts";
export { batchCount, batches, type BatchOptions, epochOrder } from "./lib/data/batches.ts";
export { type ChannelStats, channelStats, normalize, oneHot, subset } from "./lib/data/transform.ts";
export { permutation, SeededRandom } from "./lib/data/random.ts";
// Dataset share files (shareDataset, loadDatasetShares) are in lib/data/dataset_shares.ts: they reach into the
// protocol layer (Party, AShare), which this module does not export yet.
