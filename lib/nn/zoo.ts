/** The model zoo, with the paper's adjustments (average pooling by default). */
import { BatchNorm2d, Conv2d, Flatten, Linear, Pool2d, ReLU } from "./layers.ts";
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

/** A zoo model from its name and options: "lenet", "lenet:max". */
export function modelByName(spec: string): Model {
  const [name, ...opts] = spec.split(":");
  const pool: PoolKind = opts.includes("max") ? "max" : "avg";
  switch (name) {
    case "lenet":
      return lenet(pool);
    default:
      throw new RangeError(`unknown model '${spec}' (known: lenet, lenet:max)`);
  }
}
