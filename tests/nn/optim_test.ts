/** SGD's settings are bounded before any connection: one line naming the flag, the value and the bound. */
import assert from "node:assert/strict";
import { checkSgdOptions, MAX_LR, Sgd } from "../../lib/nn/optim.ts";

Deno.test("the learning rate must be positive and at most 1024", () => {
  assert.equal(MAX_LR, 1024);
  assert.throws(
    () => new Sgd({ lr: 1e30 }),
    /^RangeError: --lr must be at most 1024 \(larger rates only diverge, .*\), got 1e\+30$/,
  );
  for (const lr of [0, -0.1, Number.NaN]) {
    assert.throws(() => new Sgd({ lr }), new RegExp(`^RangeError: --lr must be a positive number, got ${lr}$`));
  }
  assert.throws(() => new Sgd({ lr: Infinity }), /--lr must be at most 1024/);
  assert.doesNotThrow(() => new Sgd({ lr: 1024 }));
});

Deno.test("at high fractional bits the ring bounds lr below 1024: lr < 2^(62 - 2f)", () => {
  checkSgdOptions({ lr: 1024 }, 16);
  checkSgdOptions({ lr: 1023 }, 26);
  assert.throws(
    () => checkSgdOptions({ lr: 1024 }, 26),
    /^RangeError: --lr must be below 1024, the largest rate whose product with a gradient of 1 stays in the ring at 26 fractional bits, got 1024$/,
  );
  assert.throws(() => checkSgdOptions({ lr: 300 }, 27), /--lr must be below 256, .* at 27 fractional bits, got 300/);
  // the constructor does not know f; the first step's constants do
  const sgd = new Sgd({ lr: 300 });
  assert.throws(() => sgd.constants(64, 27), /--lr must be below 256/);
});

Deno.test("momentum and weight decay must be in [0, 1)", () => {
  for (const momentum of [1, 1.5, -0.1, Number.NaN]) {
    assert.throws(
      () => new Sgd({ lr: 0.1, momentum }),
      new RegExp(`^RangeError: --momentum must be in \\[0, 1\\), got ${momentum}$`),
    );
  }
  for (const weightDecay of [1, 2, -1e-4]) {
    assert.throws(
      () => new Sgd({ lr: 0.1, weightDecay }),
      new RegExp(`^RangeError: --weight-decay must be in \\[0, 1\\), got ${weightDecay}$`),
    );
  }
  assert.doesNotThrow(() => new Sgd({ lr: 0.1, momentum: 0.99, weightDecay: 0.999 }));
});

Deno.test("the largest accepted settings encode exactly: lr / batch and lr * weightDecay do not wrap", () => {
  const plain = new Sgd({ lr: 1024, weightDecay: 0.5 }).constants(1, 16);
  assert.equal(plain.grad.value, 1024);
  assert.equal(plain.decay.value, 512);
  assert.equal(plain.grad.multiplier, 1024n << 16n);
  const m = new Sgd({ lr: 1024, momentum: 0.9, weightDecay: 0.5 }).constants(8, 20);
  assert.equal(m.lr.value, 1024);
  assert.equal(m.lr.multiplier, 1n << 30n);
  assert.equal(m.grad.value, 1 / 8);
  assert.ok(Math.abs(m.momentum.value - 0.9) < 2 ** -20);
});
