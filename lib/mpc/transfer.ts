/**
 * Moving tensors through the mesh: bytes straight from and into native memory
 * on the CPU build, through host copies on the GPU build.
 */
import type { Mesh } from "../net/mesh.ts";
import { RingTensor } from "../ring/tensor.ts";
import type { Shape } from "../ring/shape.ts";
import type { DType } from "../ring/tensor.ts";

export interface TensorSend {
  to: number;
  tensor: RingTensor;
}
export interface TensorRecv {
  from: number;
  shape: Shape;
  dtype?: DType;
}

/**
 * One round of the mesh moving tensors: sends each `sends` tensor, and returns
 * a new tensor per `recvs` entry, in order. Every party must call this (with
 * possibly empty lists) for every round.
 */
export async function exchange(
  mesh: Mesh,
  backend: RingTensor["backend"],
  sends: readonly TensorSend[],
  recvs: readonly TensorRecv[],
): Promise<RingTensor[]> {
  const out = recvs.map((r) => RingTensor.empty(backend, r.shape, r.dtype ?? "u64"));
  try {
    await exchangeInto(mesh, sends, recvs.map((r, k) => ({ from: r.from, into: out[k] })));
    return out;
  } catch (e) {
    out.forEach((t) => t.dispose());
    throw e;
  }
}

/**
 * The same round, receiving into tensors the caller holds: contiguous ones,
 * or slices of a larger tensor, which is how the parts of a protocol that
 * each party leads land in one result without a concatenation.
 */
export async function exchangeInto(
  mesh: Mesh,
  sends: readonly TensorSend[],
  recvs: readonly { from: number; into: RingTensor }[],
): Promise<void> {
  const held: RingTensor[] = [];
  const dense = (t: RingTensor) => (held.push(t.contiguous()), held[held.length - 1]);
  try {
    if (recvs.some((r) => !r.into.isContiguous())) {
      throw new Error("exchange: tensors received into must be contiguous");
    }
    // Host memory (the CPU build) is read and written in place, slices too;
    // otherwise through a dense copy, and staging bytes uploaded after the round.
    const sendBytes = sends.map((s) => s.tensor.hostBytes() ?? dense(s.tensor).toBytes());
    const hostTargets = recvs.map((r) => r.into.hostBytes());
    const staging = recvs.map((r, k) => hostTargets[k] ?? new Uint8Array(r.into.words * 8));
    await mesh.round(
      sends.map((s, k) => ({ to: s.to, data: sendBytes[k] })),
      recvs.map((r, k) => ({ from: r.from, into: staging[k] })),
    );
    recvs.forEach((r, k) => hostTargets[k] === null && dense(r.into).setBytes(staging[k])); // dense: a view handle
  } finally {
    held.forEach((t) => t.dispose());
  }
}
