/**
 * `cryptgpu share` and `cryptgpu reconstruct`: split a plaintext model,
 * input or dataset into three share files (PREFIX.p0.share .. p2.share; any two
 * reconstruct, one alone is uniformly random), and join two or three back.
 */
import { isOptimizerState } from "../lib/nn/optim.ts";
import { Command } from "commander";
import { NativeBackend } from "../lib/native/backend.ts";
import { FileFormatError, type Header, readTensorFile, tensorBytes, type TensorFile } from "../lib/io/format.ts";
import { checkOutput, modelMeta, reconstructTensors, shareTensors, writePlainFile } from "../lib/io/share_files.ts";
import { importOnnx } from "../lib/io/onnx/import.ts";
import { exportOnnx } from "../lib/io/onnx/export.ts";
import { writeFileAtomic } from "../lib/io/atomic.ts";
import { sequentialToGraph } from "../lib/nn/graph_from_sequential.ts";
import { basename } from "node:path";
import { checkTensors, checkValues, MAX_FRAC_BITS, MIN_FRAC_BITS, sumWarning, type Values } from "../lib/io/ranges.ts";
import { seededWeights } from "../lib/nn/calibrate.ts";
import { modelByName } from "../lib/nn/zoo.ts";
import { FIXED_DEFAULT_BITS } from "../lib/ring/fixed.ts";
import { loadDataset } from "../lib/data/load.ts";
import { shareDataset } from "../lib/data/dataset_shares.ts";

interface ShareOptions {
  model?: string;
  input?: string;
  dataset?: string;
  split: string;
  limit?: string;
  seed: string;
  out: string;
  fracBits: string;
  batchnorm: string;
}

export function shareCommand(): Command {
  return new Command("share")
    .description(
      "split a model (a file, or a zoo name with seeded weights), an input or a dataset into three share files",
    )
    .option(
      "--model <file|name>",
      "an ONNX file (.onnx), a plaintext model file (.cgtf), or a zoo model (lenet, lenet:max) with seeded weights",
    )
    .option("--input <file>", 'a plaintext input: a cryptgpu tensor file, or JSON {"shape": [...], "data": [...]}')
    .option(
      "--dataset <name|dir>",
      'a dataset: "mnist" (embedded digits), or an MNIST IDX, CIFAR-10 or Tiny ImageNet directory',
    )
    .option("--split <train|test>", "the dataset split", "train")
    .option("--limit <n>", "share only the first n samples of the split")
    .option(
      "--seed <n>",
      "seed of the standard initialization for a zoo model (batch normalization calibrated on a seeded image)",
      "1",
    )
    .option("--frac-bits <f>", "fixed-point fractional bits", String(FIXED_DEFAULT_BITS))
    .option(
      "--batchnorm <fold|train>",
      "an ONNX model's BatchNormalization: fold (into the layer before; trains as an affine map) or train " +
        "(batch statistics in training, running statistics at inference)",
      "fold",
    )
    .requiredOption("--out <prefix>", "writes PREFIX.p0.share, PREFIX.p1.share, PREFIX.p2.share")
    .action(async (o: ShareOptions) => {
      if ([o.model, o.input, o.dataset].filter(Boolean).length !== 1) {
        throw new Error("give exactly one of --model, --input and --dataset");
      }
      const fracBits = Number(o.fracBits), seed = Number(o.seed);
      if (!Number.isInteger(fracBits) || fracBits < MIN_FRAC_BITS || fracBits > MAX_FRAC_BITS) {
        throw new Error(`--frac-bits must be in [${MIN_FRAC_BITS}, ${MAX_FRAC_BITS}], got ${o.fracBits}`);
      }
      if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${o.seed}`);
      if (o.batchnorm !== "fold" && o.batchnorm !== "train") {
        throw new Error(`--batchnorm must be fold or train, got ${o.batchnorm}`);
      }
      if (o.batchnorm !== "fold" && !o.model?.endsWith(".onnx")) {
        throw new Error("--batchnorm applies to an ONNX model");
      }
      const backend = new NativeBackend();
      try {
        let paths: string[];
        if (o.dataset) {
          paths = await shareDatasetOption(backend, o, fracBits);
        } else if (o.model?.endsWith(".onnx")) {
          paths = await shareOnnx(backend, o.model, o.out, fracBits, o.batchnorm as "fold" | "train");
        } else if (o.model && !(await exists(o.model))) {
          const model = modelByName(o.model);
          const weights = seededWeights(model, seed);
          checkRanges(`${o.model} (seed ${seed})`, "model", weights, fracBits);
          paths = await shareTensors(backend, { kind: "model", model: o.model, fracBits }, weights, o.out);
        } else if (o.model) {
          paths = await sharePlainFile(backend, await readTensorFile(o.model), o.model, o.out, fracBits);
        } else if (o.input!.endsWith(".json")) {
          const tensors = new Map([["input", await readJsonInput(o.input!)]]);
          checkRanges(o.input!, "input", tensors, fracBits);
          paths = await shareTensors(backend, { kind: "input", model: "any", fracBits }, tensors, o.out);
        } else {
          const f = await readTensorFile(o.input!);
          if (f.header.kind !== "input") throw new Error(`${o.input} holds a ${f.header.kind}, not an input`);
          paths = await sharePlainFile(backend, f, o.input!, o.out, fracBits);
        }
        console.log(`wrote ${paths.join(", ")}`);
      } finally {
        backend.dispose();
      }
    });
}

export function reconstructCommand(): Command {
  return new Command("reconstruct")
    .description("join two or three share files of one sharing into a plaintext file, or a model into ONNX")
    .argument("<files...>", "two or three share files")
    .requiredOption("--out <file>", "the plaintext file to write: a tensor file, or for a model FILE.onnx")
    .action(async (files: string[], o: { out: string }) => {
      const backend = new NativeBackend();
      try {
        await checkOutput(files, o.out);
        const { header: h, tensors } = await reconstructTensors(backend, files);
        if (o.out.endsWith(".onnx")) await writeOnnx(o.out, h, tensors);
        else await writePlainFile(o.out, modelMeta(h), tensors);
        console.log(
          `wrote ${o.out}: ${h.kind} of ${h.model}, ${h.tensors.map((t) => `${t.name} [${t.shape}]`).join(", ")}`,
        );
      } finally {
        backend.dispose();
      }
    });
}

/**
 * A reconstructed model as ONNX: its own graph (an imported model's, after
 * import's folding) or the zoo model's as a graph, with the weights; a
 * checkpoint's optimizer state (velocity.*, adam_m.*, adam_v.*) is left out.
 */
async function writeOnnx(out: string, h: Header, tensors: Map<string, { shape: number[]; data: Float64Array }>) {
  if (h.kind !== "model") throw new FileFormatError(`only a model can be written as ONNX, not a ${h.kind}`);
  const weights = new Map([...tensors].filter(([name]) => !isOptimizerState(name)));
  await writeFileAtomic(out, exportOnnx(h.graph ?? sequentialToGraph(modelByName(h.model)), weights));
}

/** --dataset: reads the split and writes images [n, c, h, w] and one-hot labels [n, classes]. */
async function shareDatasetOption(backend: NativeBackend, o: ShareOptions, fracBits: number): Promise<string[]> {
  if (o.split !== "train" && o.split !== "test") throw new Error(`--split must be train or test, got ${o.split}`);
  const limit = o.limit === undefined ? undefined : Number(o.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) {
    throw new Error(`--limit must be a positive integer, got ${o.limit}`);
  }
  const dataset = await loadDataset(o.dataset!, { split: o.split, limit });
  checkValues(dataset.name, "dataset", "images", dataset.images, fracBits); // the labels are one-hot
  const paths = await shareDataset(backend, dataset, o.out, fracBits);
  console.log(
    `${dataset.name} (${dataset.split}): ${dataset.labels.length} samples of [${dataset.shape}], ${dataset.classes} classes`,
  );
  return paths;
}

/**
 * Refuses a value that does not fit (ranges.ts) before anything is written;
 * for a model, warns on stderr where a layer's sum of products may not.
 */
function checkRanges(source: string, kind: Header["kind"], tensors: Map<string, Values>, fracBits: number): void {
  const maxima = checkTensors(
    source,
    kind === "model" ? "weight" : kind === "dataset" ? "dataset" : "input",
    tensors,
    fracBits,
  );
  const warning = kind === "model" ? sumWarning(source, tensors, maxima, fracBits) : null;
  if (warning) console.error(warning);
}

/** A plaintext tensor file, checked, split into three share files (its kind and model kept). */
async function sharePlainFile(
  backend: NativeBackend,
  f: TensorFile,
  path: string,
  out: string,
  fracBits: number,
): Promise<string[]> {
  if (f.header.share) throw new FileFormatError(`${path} is already a share file`);
  const tensors = new Map(f.header.tensors.map((e) => {
    const { bytes } = tensorBytes(f, e.name);
    return [e.name, { shape: e.shape, data: new Float64Array(bytes.buffer) }];
  }));
  checkRanges(path, f.header.kind, tensors, fracBits);
  return await shareTensors(backend, { ...modelMeta(f.header), fracBits }, tensors, out);
}

/**
 * An ONNX model, imported as a graph (every unsupported op or attribute is
 * named, all at once, before anything is written) and split like a model file;
 * the share files carry the graph, so the parties run the same network.
 */
async function shareOnnx(
  backend: NativeBackend,
  path: string,
  out: string,
  fracBits: number,
  batchNorm: "fold" | "train",
): Promise<string[]> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new FileFormatError(`cannot read ${path}: ${(e as Error).message}`);
  }
  const { spec, weights, notes } = importOnnx(bytes, path, { batchNorm });
  for (const note of notes) console.error(`${path}: ${note}`);
  checkRanges(path, "model", weights, fracBits);
  const model = `onnx:${basename(path, ".onnx")}`;
  const paths = await shareTensors(backend, { kind: "model", model, fracBits, graph: spec }, weights, out);
  console.log(
    `${path}: ${spec.nodes.length} nodes, input [batch, ${
      spec.input.shape.join(", ")
    }], ${weights.size} weight tensors`,
  );
  return paths;
}

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function readJsonInput(path: string): Promise<{ shape: number[]; data: Float64Array }> {
  let j: { shape?: unknown; data?: unknown };
  try {
    j = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`cannot read input ${path}: ${(e as Error).message}`);
  }
  const shape = j.shape, data = j.data;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`${path}: "shape" must be a list of sizes`);
  }
  // 1e999 parses as Infinity: the range check names it with its index
  if (!Array.isArray(data) || !data.every((v) => typeof v === "number")) {
    throw new Error(`${path}: "data" must be a list of numbers`);
  }
  if (data.length !== shape.reduce((a: number, b: number) => a * b, 1)) {
    throw new Error(`${path}: ${data.length} values for shape [${shape}]`);
  }
  return { shape, data: Float64Array.from(data) };
}
