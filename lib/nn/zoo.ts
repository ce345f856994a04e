/**
 * The model zoo, with the paper's adjustments (Appendix B): every max pooling
 * becomes average pooling unless the name asks for `:max`, LeNet uses ReLU,
 * and AlexNet and VGG-16 get smaller classifiers on small images.
 *
 * Where the paper is not precise, the layouts are torchvision's (AlexNet in its
 * one-GPU form 64-192-384-256-256, VGG-16 configuration D without batch
 * normalization, ResNet v1.5 with the stride in the 3x3 convolution), so that
 * parameter counts can be checked against the well-known numbers.
 *
 * The inference networks use `BatchNorm2d`, the folded affine map; the
 * networks meant for private training from scratch (`bncnn`,
 * `resnet18-cifar10`, `resnet50-64`) use `BatchNorm` (batchnorm.ts), which
 * normalizes with batch statistics in training and keeps shared running
 * statistics for inference.
 */
import { BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool, type Layer, Linear, Pool2d, ReLU } from "./layers.ts";
import { Model, Residual, Sequential } from "./model.ts";
import { BatchNorm } from "./batchnorm.ts";

export type PoolKind = "avg" | "max";

/** LeNet for MNIST: conv 20@5x5, pool, conv 50@5x5, pool, FC 500, FC 10, with ReLU. */
export function lenet(pool: PoolKind = "avg"): Model {
  return new Model(
    "LeNet",
    new Sequential([
      new Conv2d(1, 20, 5),
      new ReLU(),
      new Pool2d(pool, 2),
      new Conv2d(20, 50, 5),
      new ReLU(),
      new Pool2d(pool, 2),
      new Flatten(),
      new Linear(800, 500),
      new ReLU(),
      new Linear(500, 10),
    ]),
    [1, 28, 28],
  );
}

/** Linear layers in -> hidden[0] -> ... -> classes with ReLU between, and torchvision's dropout. */
function classifier(inFeatures: number, hidden: number[], classes: number, dropoutFirst: boolean): Layer[] {
  const out: Layer[] = [new Flatten()];
  let width = inFeatures;
  for (const h of hidden) {
    // AlexNet drops out before each hidden linear layer, VGG after each hidden ReLU
    if (dropoutFirst) out.push(new Dropout(), new Linear(width, h), new ReLU());
    else out.push(new Linear(width, h), new ReLU(), new Dropout());
    width = h;
  }
  out.push(new Linear(width, classes));
  return out;
}

/**
 * AlexNet features (torchvision): conv 64@11x11/4 pad 2, pool 3/2, conv 192@5x5 pad 2,
 * pool 3/2, conv 384, 256, 256 @3x3 pad 1, and the last pool 3/2 unless dropped.
 */
function alexnetFeatures(pool: PoolKind, lastPool: boolean): Layer[] {
  const conv = (
    i: number,
    o: number,
    k: number,
    stride = 1,
    padding = (k - 1) / 2,
  ) => [new Conv2d(i, o, k, { stride, padding }), new ReLU()];
  return [
    ...conv(3, 64, 11, 4, 2),
    new Pool2d(pool, 3, 2),
    ...conv(64, 192, 5),
    new Pool2d(pool, 3, 2),
    ...conv(192, 384, 3),
    ...conv(384, 256, 3),
    ...conv(256, 256, 3),
    ...(lastPool ? [new Pool2d(pool, 3, 2)] : []),
  ];
}

/**
 * AlexNet on CIFAR-10 (32x32) and Tiny ImageNet (64x64): the paper drops the
 * last pooling and sizes the linear layers 256-256-10 and 1024-1024-200. The
 * features end at 256x1x1 (CIFAR-10) and 256x3x3 (Tiny ImageNet).
 */
export function alexnetSmall(dataset: "cifar10" | "tinyimagenet", pool: PoolKind = "avg"): Model {
  const [side, spatial, hidden, classes, title] = dataset === "cifar10"
    ? [32, 1, 256, 10, "AlexNet (CIFAR-10)"]
    : [64, 3, 1024, 200, "AlexNet (Tiny ImageNet)"];
  return new Model(
    title,
    new Sequential([
      ...alexnetFeatures(pool, false),
      ...classifier(256 * spatial * spatial, [hidden, hidden], classes, true),
    ]),
    [3, side, side],
  );
}

/** AlexNet on ImageNet (224x224) as in torchvision: 6x6x256 features, 4096-4096-1000 (61.1M parameters). */
export function alexnetImagenet(pool: PoolKind = "avg"): Model {
  return new Model(
    "AlexNet (ImageNet)",
    new Sequential([...alexnetFeatures(pool, true), ...classifier(256 * 6 * 6, [4096, 4096], 1000, true)]),
    [3, 224, 224],
  );
}

/** VGG-16 features (configuration D): 13 3x3 convolutions, a 2x2 pool after each of 5 stages. */
function vggFeatures(pool: PoolKind): Layer[] {
  const stages = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]];
  const out: Layer[] = [];
  let channels = 3;
  for (const stage of stages) {
    for (const c of stage) {
      out.push(new Conv2d(channels, c, 3, { padding: 1 }), new ReLU());
      channels = c;
    }
    out.push(new Pool2d(pool, 2));
  }
  return out;
}

/** VGG-16 on CIFAR-10 (512x1x1 features, 256-256-10) and Tiny ImageNet (512x2x2, 512-512-200). */
export function vgg16Small(dataset: "cifar10" | "tinyimagenet", pool: PoolKind = "avg"): Model {
  const [side, spatial, hidden, classes, title] = dataset === "cifar10"
    ? [32, 1, 256, 10, "VGG-16 (CIFAR-10)"]
    : [64, 2, 512, 200, "VGG-16 (Tiny ImageNet)"];
  return new Model(
    title,
    new Sequential([...vggFeatures(pool), ...classifier(512 * spatial * spatial, [hidden, hidden], classes, false)]),
    [3, side, side],
  );
}

/**
 * VGG-16 on ImageNet with the paper's extra 2x2 average pooling before the
 * classifier. The features are 512x7x7 at 224x224 (the paper's "18432" would
 * be 512x6x6); the pooling makes them 512x3x3 = 4608, the paper's figure, so
 * the first linear layer is 4608 -> 4096. This pool is average in both forms:
 * the paper adds it as one.
 */
export function vgg16Imagenet(pool: PoolKind = "avg"): Model {
  return new Model(
    "VGG-16 (ImageNet)",
    new Sequential([
      ...vggFeatures(pool),
      new Pool2d("avg", 2),
      ...classifier(512 * 3 * 3, [4096, 4096], 1000, false),
    ]),
    [3, 224, 224],
  );
}

/** Makes a batch normalization layer for c channels: the folded `BatchNorm2d` or the trainable `BatchNorm`. */
export type NormFactory = (channels: number) => Layer;
const folded: NormFactory = (c) => new BatchNorm2d(c);
const batchStats: NormFactory = (c) => new BatchNorm(c);

/** A ResNet bottleneck block: 1x1, 3x3 (stride), 1x1 with batch normalization, and a projection shortcut. */
export function bottleneck(inChannels: number, width: number, stride = 1, norm: NormFactory = folded): Residual {
  const out = 4 * width;
  const main = new Sequential([
    new Conv2d(inChannels, width, 1, { bias: false }),
    norm(width),
    new ReLU(),
    new Conv2d(width, width, 3, { stride, padding: 1, bias: false }),
    norm(width),
    new ReLU(),
    new Conv2d(width, out, 1, { bias: false }),
    norm(out),
  ]);
  const shortcut = stride !== 1 || inChannels !== out
    ? new Sequential([new Conv2d(inChannels, out, 1, { stride, bias: false }), norm(out)])
    : null;
  return new Residual(main, shortcut);
}

/** A ResNet basic block: two 3x3 convolutions (the first with the stride), each with batch normalization. */
export function basicBlock(inChannels: number, width: number, stride = 1, norm: NormFactory = batchStats): Residual {
  const main = new Sequential([
    new Conv2d(inChannels, width, 3, { stride, padding: 1, bias: false }),
    norm(width),
    new ReLU(),
    new Conv2d(width, width, 3, { padding: 1, bias: false }),
    norm(width),
  ]);
  const shortcut = stride !== 1 || inChannels !== width
    ? new Sequential([new Conv2d(inChannels, width, 1, { stride, bias: false }), norm(width)])
    : null;
  return new Residual(main, shortcut);
}

/** Blocks per stage of the bottleneck ResNets. */
export const resnetDepths = { 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3] } as const;

/**
 * ResNet-50/101/152 on ImageNet (torchvision layout): a 7x7/2 stem with batch
 * normalization, a 3x3/2 pool (the network's one max pooling; average unless
 * `:max`), four stages of bottleneck blocks (widths 64..512, the first stage at
 * stride 1), each block followed by a ReLU after the addition, then global
 * average pooling and FC 2048 -> 1000. Options: another input side and class
 * count, and the normalization layer: `resnet50-64` is ResNet-50 at 64x64
 * (Tiny ImageNet's size, 200 classes: 23,917,832 trainable parameters, the
 * features end 2048x2x2) with `BatchNorm`, for private training benchmarks.
 * Its last stage normalizes over m = 4 n values per channel: at batch 1 the
 * private forward followed the twin within 9e-3 relative at f = 20.
 */
export function resnet(
  depth: keyof typeof resnetDepths,
  pool: PoolKind = "avg",
  o: { side?: number; classes?: number; norm?: NormFactory; name?: string } = {},
): Model {
  const norm = o.norm ?? folded, side = o.side ?? 224, classes = o.classes ?? 1000;
  const layers: Layer[] = [
    new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false }),
    norm(64),
    new ReLU(),
    new Pool2d(pool, 3, 2, 1),
  ];
  let channels = 64;
  resnetDepths[depth].forEach((blocks, stage) => {
    const width = 64 << stage;
    for (let b = 0; b < blocks; b++) {
      layers.push(bottleneck(channels, width, b === 0 && stage > 0 ? 2 : 1, norm), new ReLU());
      channels = 4 * width;
    }
  });
  layers.push(new GlobalAvgPool(), new Flatten(), new Linear(channels, classes));
  return new Model(o.name ?? `ResNet-${depth}`, new Sequential(layers), [3, side, side]);
}

/**
 * ResNet-18 for CIFAR-10 (32x32): a 3x3 stem convolution of 64 channels and no
 * pooling, four stages of two basic blocks (64, 128, 256, 512 channels, stride
 * 2 at stages 2-4, a 1x1 projection with batch normalization where the shape
 * changes), a ReLU after each addition, global average pooling and FC 512 -> 10:
 * 11,173,962 trainable parameters. Batch normalization with batch statistics.
 */
export function resnet18Cifar10(): Model {
  const layers: Layer[] = [new Conv2d(3, 64, 3, { padding: 1, bias: false }), new BatchNorm(64), new ReLU()];
  let channels = 64;
  [64, 128, 256, 512].forEach((width, stage) => {
    for (let b = 0; b < 2; b++) {
      layers.push(basicBlock(channels, width, b === 0 && stage > 0 ? 2 : 1), new ReLU());
      channels = width;
    }
  });
  layers.push(new GlobalAvgPool(), new Flatten(), new Linear(512, 10));
  return new Model("ResNet-18 (CIFAR-10)", new Sequential(layers), [3, 32, 32]);
}

/**
 * A small CNN with batch normalization for the 28x28 digits, cheap enough to
 * train privately in a test: conv 8@3x3 pad 1, BN, ReLU, 2x2 pool (28 -> 14),
 * conv 16@3x3 pad 1, BN, ReLU, 2x2 pool (14 -> 7), FC 784 -> 10. The pool after
 * the first block halves the second convolution's and its ReLU's cost.
 */
export function bncnn(pool: PoolKind = "avg"): Model {
  return new Model(
    "BN-CNN",
    new Sequential([
      new Conv2d(1, 8, 3, { padding: 1, bias: false }),
      new BatchNorm(8),
      new ReLU(),
      new Pool2d(pool, 2),
      new Conv2d(8, 16, 3, { padding: 1, bias: false }),
      new BatchNorm(16),
      new ReLU(),
      new Pool2d(pool, 2),
      new Flatten(),
      new Linear(16 * 7 * 7, 10),
    ]),
    [1, 28, 28],
  );
}

const builders: Record<string, (pool: PoolKind) => Model> = {
  "lenet": lenet,
  "alexnet-cifar10": (pool) => alexnetSmall("cifar10", pool),
  "alexnet-tinyimagenet": (pool) => alexnetSmall("tinyimagenet", pool),
  "alexnet-imagenet": alexnetImagenet,
  "vgg16-cifar10": (pool) => vgg16Small("cifar10", pool),
  "vgg16-tinyimagenet": (pool) => vgg16Small("tinyimagenet", pool),
  "vgg16-imagenet": vgg16Imagenet,
  "resnet50": (pool) => resnet(50, pool),
  "resnet101": (pool) => resnet(101, pool),
  "resnet152": (pool) => resnet(152, pool),
  "bncnn": bncnn,
  "resnet18-cifar10": () => resnet18Cifar10(),
  // the bottleneck ResNet-50 trained with batch statistics at Tiny ImageNet's 64x64 and 200 classes
  "resnet50-64": (pool) =>
    resnet(50, pool, { side: 64, classes: 200, norm: batchStats, name: "ResNet-50 (64x64, 200 classes)" }),
};

/** The names modelByName knows (each also with ":max"). */
export const modelNames: readonly string[] = Object.keys(builders);

/** A zoo model from its name and options: "lenet", "lenet:max", "vgg16-cifar10", "resnet50:max", ... */
export function modelByName(spec: string): Model {
  const [name, ...opts] = spec.split(":");
  const unknownOpt = opts.find((o) => o !== "max" && o !== "avg");
  const build = Object.hasOwn(builders, name) ? builders[name] : undefined;
  if (!build || unknownOpt !== undefined) {
    throw new RangeError(`unknown model '${spec}' (known: ${modelNames.join(", ")}; each also with ':max')`);
  }
  return build(opts.includes("max") ? "max" : "avg");
}
