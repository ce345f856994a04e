/**
 * The model zoo, with the paper's adjustments (Appendix B): every max pooling
 * becomes average pooling unless the name asks for `:max`, LeNet uses ReLU,
 * and AlexNet and VGG-16 get smaller classifiers on small images.
 *
 * Where the paper is not precise, the layouts are torchvision's (AlexNet in its
 * one-GPU form 64-192-384-256-256, VGG-16 configuration D without batch
 * normalization, ResNet v1.5 with the stride in the 3x3 convolution), so that
 * parameter counts can be checked against the well-known numbers.
 */
import { BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool, type Layer, Linear, Pool2d, ReLU } from "./layers.ts";
import { Model, Residual, Sequential } from "./model.ts";

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

/** A ResNet bottleneck block: 1x1, 3x3 (stride), 1x1 with batch normalization, and a projection shortcut. */
export function bottleneck(inChannels: number, width: number, stride = 1): Residual {
  const out = 4 * width;
  const main = new Sequential([
    new Conv2d(inChannels, width, 1, { bias: false }),
    new BatchNorm2d(width),
    new ReLU(),
    new Conv2d(width, width, 3, { stride, padding: 1, bias: false }),
    new BatchNorm2d(width),
    new ReLU(),
    new Conv2d(width, out, 1, { bias: false }),
    new BatchNorm2d(out),
  ]);
  const shortcut = stride !== 1 || inChannels !== out
    ? new Sequential([new Conv2d(inChannels, out, 1, { stride, bias: false }), new BatchNorm2d(out)])
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
 * average pooling and FC 2048 -> 1000.
 */
export function resnet(depth: keyof typeof resnetDepths, pool: PoolKind = "avg"): Model {
  const layers: Layer[] = [
    new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false }),
    new BatchNorm2d(64),
    new ReLU(),
    new Pool2d(pool, 3, 2, 1),
  ];
  let channels = 64;
  resnetDepths[depth].forEach((blocks, stage) => {
    const width = 64 << stage;
    for (let b = 0; b < blocks; b++) {
      layers.push(bottleneck(channels, width, b === 0 && stage > 0 ? 2 : 1), new ReLU());
      channels = 4 * width;
    }
  });
  layers.push(new GlobalAvgPool(), new Flatten(), new Linear(channels, 1000));
  return new Model(`ResNet-${depth}`, new Sequential(layers), [3, 224, 224]);
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
