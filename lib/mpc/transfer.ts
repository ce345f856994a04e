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
  const dense = sends.map((s) => s.tensor.contiguous());
  const out = recvs.map((r) => RingTensor.empty(backend, r.shape, r.dtype ?? "u64"));
  try {
    const sendBytes = dense.map((t) => t.hostBytes() ?? t.toBytes());
    const targets = out.map((t) => t.hostBytes());
    const staging = out.map((t, k) => targets[k] ?? new Uint8Array(t.words * 8));
    await mesh.round(
      sends.map((s, k) => ({ to: s.to, data: sendBytes[k] })),
      recvs.map((r, k) => ({ from: r.from, into: staging[k] })),
    );
    out.forEach((t, k) => targets[k] === null && t.setBytes(staging[k]));
    return out;
  } catch (e) {
    out.forEach((t) => t.dispose());
    throw e;
  } finally {
    dense.forEach((t) => t.dispose());
  }
}
