/**
 * `cryptgpu inspect FILE`: what a cryptgpu tensor file (plain or share) or an
 * ONNX file holds, from its header and structure alone: no value is printed
 * and no share is opened. For an ONNX file, whether `share --model` would
 * take it, and every reason it would not.
 */
import { Command } from "commander";
import { fromBinary } from "@bufbuild/protobuf";
import { FileFormatError, parseTensorFile, printable } from "../lib/io/format.ts";
import { analyzeOnnx } from "../lib/io/onnx/import.ts";
import { ModelProtoSchema } from "../lib/io/onnx/onnx_pb.ts";
import type { GraphSpec } from "../lib/nn/graph_spec.ts";
import { si } from "./output.ts";

interface GraphSummary {
  input: number[];
  output: string;
  nodes: number;
  ops: Record<string, number>;
}

export interface Description {
  file: string;
  format: "cryptgpu" | "onnx";
  kind?: string;
  model?: string;
  party?: number;
  sharing?: string;
  fracBits?: number;
  training?: Record<string, number | string>;
  graph?: GraphSummary;
  tensors?: { name: string; shape: number[] }[];
  /** The number of weights (elements of every tensor). */
  elements?: number;
  onnx?: { opset: number | null; producer: string; ops: Record<string, number> };
  importable?: boolean;
  problems?: string[];
}

const count = (names: string[]) => names.reduce<Record<string, number>>((m, n) => ({ ...m, [n]: (m[n] ?? 0) + 1 }), {});
const elements = (tensors: { shape: number[] }[]) =>
  tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);

function summary(g: GraphSpec): GraphSummary {
  return { input: g.input.shape, output: g.output, nodes: g.nodes.length, ops: count(g.nodes.map((n) => n.op)) };
}

const isTensorFile = (b: Uint8Array) => b.length >= 4 && String.fromCharCode(...b.subarray(0, 4)) === "CGTF";

async function describeTensorFile(bytes: Uint8Array, file: string): Promise<Description> {
  const { header: h } = await parseTensorFile(bytes, file);
  return {
    file,
    format: "cryptgpu",
    kind: h.kind,
    model: h.model,
    ...(h.share ? { party: h.share.party, sharing: h.share.id } : {}),
    fracBits: h.fracBits,
    ...(h.training ? { training: { ...h.training } } : {}),
    ...(h.graph ? { graph: summary(h.graph) } : {}),
    tensors: h.tensors.map((t) => ({ name: t.name, shape: t.shape })),
    elements: elements(h.tensors),
  };
}

function describeOnnx(bytes: Uint8Array, file: string): Description {
  const { graph, problems } = analyzeOnnx(bytes, file);
  let onnx: Description["onnx"];
  try {
    const m = fromBinary(ModelProtoSchema, bytes);
    const opset = m.opsetImport.find((o) => o.domain === "" || o.domain === "ai.onnx");
    onnx = {
      opset: opset ? Number(opset.version) : null,
      producer: [m.producerName, m.producerVersion].filter(Boolean).join(" "),
      ops: count(m.graph?.node.map((n) => n.opType) ?? []),
    };
  } catch {
    onnx = undefined; // analyzeOnnx has named the decoding problem
  }
  const tensors = graph ? [...graph.weights].map(([name, t]) => ({ name, shape: t.shape })) : undefined;
  return {
    file,
    format: "onnx",
    ...(onnx ? { onnx } : {}),
    importable: problems.length === 0,
    problems,
    ...(graph ? { graph: summary(graph.spec), tensors, elements: elements(tensors!) } : {}),
  };
}

export async function describe(file: string): Promise<Description> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    throw new FileFormatError(`cannot read ${file}: ${(e as Error).message}`);
  }
  return isTensorFile(bytes) ? await describeTensorFile(bytes, file) : describeOnnx(bytes, file);
}

const ops = (m: Record<string, number>) => Object.entries(m).map(([op, n]) => `${op} ${n}`).join(", ");

/** The text form: every string from the file goes through printable (a crafted name cannot break the lines). */
function print(d: Description): void {
  const log = (line: string) => console.log(printable(line));
  if (d.format === "onnx") {
    const o = d.onnx;
    log(`${d.file}: ONNX${o ? `, opset ${o.opset ?? "none"}${o.producer ? `, from ${o.producer}` : ""}` : ""}`);
    if (o) log(`  nodes: ${ops(o.ops) || "none"}`);
  } else {
    const owner = d.party === undefined ? "plaintext" : `party ${d.party}'s shares (sharing ${d.sharing})`;
    log(`${d.file}: ${d.kind} of ${d.model}, ${owner}, ${d.fracBits} fractional bits`);
    if (d.training) {
      const t = d.training;
      log(`  training checkpoint: next iteration ${t.iteration}, batch ${t.batch}, lr ${t.lr}, seed ${t.seed}`);
    }
  }
  if (d.graph) {
    const g = d.graph;
    log(`  graph: input [batch, ${g.input.join(", ")}], ${g.nodes} nodes: ${ops(g.ops)}`);
  }
  if (d.tensors) {
    log(`  ${d.tensors.length} tensors, ${d.elements! < 1000 ? d.elements : si(d.elements!)} values:`);
    for (const t of d.tensors) log(`    ${t.name} [${t.shape.join(", ")}]`);
  }
  if (d.format === "onnx") {
    if (d.importable) log("  share --model takes it");
    else for (const p of d.problems!) log(`  refused: ${p}`);
  }
}

export function inspectCommand(): Command {
  return new Command("inspect")
    .description("show what a tensor, share or ONNX file holds (names, shapes, graph; never a value)")
    .argument("<file>", "a .cgtf, .share or .onnx file")
    .option("--json", "print JSON")
    .action(async (file: string, o: { json?: boolean }) => {
      const d = await describe(file);
      if (o.json) console.log(JSON.stringify(d, null, 2));
      else print(d);
      // An ONNX file that would be refused is an answer, not a failure of inspect: exit 0 either way.
    });
}
