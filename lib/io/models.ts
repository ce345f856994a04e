/** The network a model file describes: a zoo model by its name, or the graph the file carries (an ONNX import). */
import { Model } from "../nn/model.ts";
import { Graph } from "../nn/graph.ts";
import { modelByName } from "../nn/zoo.ts";
import type { Header } from "./format.ts";

export function modelOf(h: Pick<Header, "model" | "graph">): Model {
  return h.graph ? new Model(h.model, new Graph(h.graph), h.graph.input.shape) : modelByName(h.model);
}
