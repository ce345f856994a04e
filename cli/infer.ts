/**
 * `cryptgpu infer`: private inference by one of the three parties. Each loads
 * its share files of the model and the input (a `{i}` in a path stands for the
 * party index, for `local infer`), checks them before any protocol starts,
 * runs the network on shares and either reveals the output to one party or
 * writes its output shares.
 */
import { Command } from "commander";
import { FileFormatError } from "../lib/io/format.ts";
import { checkModelTensors, checkShareFile } from "../lib/io/checks.ts";
import { loadShares, saveShares, sharePath } from "../lib/io/share_files.ts";
import { emptyBreakdown, sharedParams } from "../lib/nn/model.ts";
import { trimDeadTaps, trimShares } from "../lib/nn/trim_taps.ts";
import { modelOf } from "../lib/io/models.ts";
import { argmaxRows } from "../lib/nn/plain.ts";
import { architectureDigest } from "../lib/nn/architecture.ts";
import { commonId } from "../lib/mpc/common_id.ts";
import { preprocessFor } from "../lib/mpc/demand.ts";
import { rehearseForward } from "../lib/nn/rehearsal.ts";
import { addPartyOptions, openFromFlags, type PartyFlags } from "./party_options.ts";
import { si, table } from "./output.ts";

interface InferOptions extends PartyFlags {
  model: string;
  input: string;
  revealTo: string;
  out?: string;
  json?: boolean;
  verbose?: boolean;
  rehearse?: boolean;
}

export function inferCommand(): Command {
  return addPartyOptions(
    new Command("infer")
      .description("private inference on shared weights and inputs")
      .requiredOption("--model <file>", "this party's model share file ({i}: the party index)")
      .requiredOption("--input <file>", "this party's input share file ({i}: the party index)")
      .option("--reveal-to <j>", "the party that learns the output", "0")
      .option("--out <prefix>", "write output shares to PREFIX.p<i>.share instead of revealing")
      .option("--json", "print JSON")
      .option("--verbose", "print time, bytes and rounds per layer type")
      .option(
        "--rehearse",
        "after connecting, run the forward twice over the real links on zero weights and input (nothing secret), so " +
          "that the real one finds its code compiled and its buffers cached, and with --truncation preprocessed its " +
          "pairs and masks made ahead",
      ),
    "corrected",
  ).action(async (o: InferOptions) => {
    await infer(o);
  });
}

/**
 * Where the time from the command to the answer goes, in seconds: the process's start (runtime and modules, up to
 * the command's first line), the file checks, the session's opening (native library, connections, handshake,
 * agreement), the rehearsal (--rehearse), the material made ahead (preprocessed truncation after a rehearsal),
 * loading the shares, the private forward pass, and revealing and printing the answer.
 */
export interface Latency {
  startup: number;
  checks: number;
  connect: number;
  rehearsal: number;
  preprocess: number;
  load: number;
  inference: number;
  output: number;
  total: number;
}

/** Marks phases on the process clock (performance.now() counts from the process's start). */
function phases() {
  let last = 0;
  const times: Record<string, number> = {};
  return {
    mark(name: keyof Latency) {
      const now = performance.now();
      times[name] = (now - last) / 1000;
      last = now;
    },
    done: (): Latency => ({ ...times, total: last / 1000 }) as unknown as Latency,
  };
}

async function infer(o: InferOptions): Promise<void> {
  const clock = phases();
  clock.mark("startup");
  const party = Number(o.party);
  if (![0, 1, 2].includes(party)) throw new Error(`--party must be 0, 1 or 2, got ${o.party}`);
  const revealParty = Number(o.revealTo);
  if (![0, 1, 2].includes(revealParty)) throw new Error(`--reveal-to must be 0, 1 or 2, got ${o.revealTo}`);
  const modelPath = o.model.replaceAll("{i}", String(party)), inputPath = o.input.replaceAll("{i}", String(party));
  // Everything that can be checked alone is checked before connecting.
  const mh = await checkShareFile(modelPath, party, "model");
  const ih = await checkShareFile(inputPath, party, "input");
  const model = modelOf(mh);
  const inputEntry = ih.tensors.find((t) => t.name === "input");
  if (!inputEntry) throw new FileFormatError(`${inputPath} has no tensor named input`);
  if (inputEntry.shape[0] === 0) {
    throw new FileFormatError(`${inputPath} holds an empty batch (shape [${inputEntry.shape}])`);
  }
  const outShape = model.checkInput(inputEntry.shape);
  checkModelTensors(modelPath, mh, model.paramShapes());
  if (ih.fracBits !== mh.fracBits) {
    throw new FileFormatError(`the model uses ${mh.fracBits} fractional bits, the input ${ih.fracBits}`);
  }

  // What the three must hold in common, compared before any protocol: a share file of another sharing, another
  // model or another disclosure on one party is refused by name instead of computed on.
  clock.mark("checks");
  // The weights' dead kernel taps (public: the input's size is the model's) are cut when they are loaded.
  const { model: served, trims } = trimDeadTaps(model);
  const session = await openFromFlags(o, mh.fracBits, {
    command: "infer",
    model: mh.model,
    architecture: architectureDigest(model),
    modelSharing: mh.share!.id,
    inputSharing: ih.share!.id,
    inputShape: inputEntry.shape.join("x"),
    output: o.out ? "shares" : `revealed to party ${revealParty}`,
    // a rehearsed party makes its truncation pairs before the input: the three must do so together
    rehearse: Boolean(o.rehearse),
  });
  try {
    const p = session.party;
    clock.mark("connect");
    const rehearsed = o.rehearse
      ? await rehearseForward(p, served, inputEntry.shape, o.out ? null : revealParty)
      : null;
    clock.mark("rehearsal");
    if (rehearsed && p.truncation === "preprocessed") await preprocessFor(p, rehearsed.demand);
    clock.mark("preprocess");
    const weights = await loadShares(p, modelPath), input = await loadShares(p, inputPath);
    trimShares(weights.shares, trims);
    const x = input.shares.get("input")!;
    const breakdown = emptyBreakdown();
    clock.mark("load");
    const s0 = p.mesh.stats(), t0 = performance.now();
    // Revealed: the last layer's product is opened to the party straight from its shares (openOutputTo)
    const params = sharedParams(weights.shares);
    const result = o.out
      ? { shares: await served.net.forward(x, params, breakdown) }
      : await served.net.openOutputTo(x, params, revealParty, breakdown);
    const seconds = (performance.now() - t0) / 1000, s1 = p.mesh.stats();
    clock.mark("inference");
    x.dispose();
    weights.shares.forEach((w) => w.dispose());
    const cost = { seconds, bytesSent: s1.bytesSent - s0.bytesSent, rounds: s1.rounds - s0.rounds };
    if ("shares" in result) {
      using y = result.shares;
      const path = sharePath(o.out!, p.index);
      await saveShares(p, path, { kind: "output", model: mh.model, id: await commonId(p) }, new Map([["output", y]]));
      if (!o.json) console.error(`party ${p.index}: wrote ${path}`);
      return;
    }
    using out = result.value;
    if (p.index !== revealParty) return;
    const logits = out!.decode(result.fracBits);
    const classes = outShape[outShape.length - 1];
    const predictions = argmaxRows(logits, classes);
    clock.mark("output");
    const t = clock.done();
    const latency: Latency = {
      startup: t.startup,
      checks: t.checks,
      connect: t.connect,
      rehearsal: t.rehearsal,
      preprocess: t.preprocess,
      load: t.load,
      inference: t.inference,
      output: t.output,
      total: t.total,
    };
    if (o.json) {
      const record = { model: mh.model, predictions, logits: Array.from(logits), ...cost, breakdown, latency };
      console.log(JSON.stringify(record, null, 2));
      return;
    }
    console.log(`${mh.model}: predicted classes ${predictions.join(" ")}`);
    console.log(`${cost.seconds.toFixed(3)} s, ${si(cost.bytesSent)}B sent by party ${p.index}, ${cost.rounds} rounds`);
    if (o.verbose) {
      const rows = Object.entries(breakdown).filter(([, b]) => b.rounds > 0).map((
        [k, b],
      ) => [k, b.seconds.toFixed(3), `${si(b.bytes)}B`, String(b.rounds)]);
      console.log(table(["layer type", "time (s)", "sent", "rounds"], rows));
      const spent = Object.entries(latency).map(([k, v]) => `${k} ${v.toFixed(3)} s`).join(", ");
      console.log(`from the process's start to the answer: ${spent}`);
    }
  } finally {
    session.close();
  }
}
