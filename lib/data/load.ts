/**
 * loadDataset: the one entry point the command line and training use. A name
 * ("mnist", the embedded digits) or a path, whose format is detected by its
 * content: MNIST IDX files, CIFAR-10 batches, or a Tiny ImageNet folder.
 */
import { loadCifarDir, loadCifarFile, looksLikeCifar } from "./cifar.ts";
import { type Dataset, DatasetError, type LoadOptions } from "./dataset.ts";
import { loadEmbeddedMnist } from "./embedded.ts";
import { statKind } from "./files.ts";
import { loadMnistDir, looksLikeMnist } from "./mnist.ts";
import { loadTinyImagenetDir, tinyImagenetRoot } from "./tiny_imagenet.ts";

/** Names that need no path. */
export const EMBEDDED_DATASETS = ["mnist"] as const;

export type DatasetFormat = "mnist-idx" | "cifar10" | "tiny-imagenet";

/** The format of a directory, by what it holds, or null. */
export async function detectFormat(dir: string): Promise<DatasetFormat | null> {
  if (await looksLikeMnist(dir)) return "mnist-idx";
  if (await looksLikeCifar(dir)) return "cifar10";
  if (await tinyImagenetRoot(dir)) return "tiny-imagenet";
  return null;
}

/** Reads a split of a dataset by name or path; every failure is one DatasetError line. */
export async function loadDataset(nameOrPath: string, options: LoadOptions = {}): Promise<Dataset> {
  if (options.split !== undefined && options.split !== "train" && options.split !== "test") {
    throw new DatasetError(`split must be train or test, got ${options.split}`);
  }
  const kind = await statKind(nameOrPath);
  if (kind === null && nameOrPath === "mnist") return await loadEmbeddedMnist(options);
  if (kind === null) {
    throw new DatasetError(
      `no dataset ${nameOrPath}: give "mnist" (the embedded digits) or the path of an MNIST, CIFAR-10 or Tiny ImageNet directory`,
    );
  }
  if (kind === "file") {
    if (nameOrPath.endsWith(".bin")) return await loadCifarFile(nameOrPath, options);
    throw new DatasetError(
      `${nameOrPath} is a file: give a dataset directory (MNIST IDX, CIFAR-10, Tiny ImageNet) or a CIFAR-10 .bin batch`,
    );
  }
  switch (await detectFormat(nameOrPath)) {
    case "mnist-idx":
      return await loadMnistDir(nameOrPath, options);
    case "cifar10":
      return await loadCifarDir(nameOrPath, options);
    case "tiny-imagenet":
      return await loadTinyImagenetDir(nameOrPath, options);
    default:
      throw new DatasetError(
        `${nameOrPath}: not a dataset directory: no MNIST IDX files (train-images-idx3-ubyte[.gz]), ` +
          `no CIFAR-10 batches (data_batch_1.bin, test_batch.bin) and no Tiny ImageNet wnids.txt`,
      );
  }
}
