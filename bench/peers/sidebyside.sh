#!/usr/bin/env bash
# MP-SPDZ's replicated-ring protocol against cryptgpu, interleaved in one run on one machine, three local parties each
# (issue 14). MPSPDZ_DIR is a tree built by mpspdz/build.sh. cryptgpu runs LeNet:max batch 1 under the corrected
# truncation (the default of `infer`) and under the preprocessed one, rehearsed (`--rehearse`: a forward on zeros over
# the links at setup, its count of pairs and masks made before the first timed forward, and again before the second).
# usage: bench/peers/sidebyside.sh MPSPDZ_DIR [REPS]     (from the project's root; deno on the PATH)
set -u
mp=$(cd "$1" && pwd); reps=${2:-3}
cg="deno run -A cli/main.ts"
out=$(mktemp -d)
mpspdz() { # program name -> party 0's Time1 seconds
  (cd "$mp" && ./run_bench.sh "$1" 2>/dev/null) | grep -m1 '^Time1' | awk '{print $3}'
}
cg_relu() {
  $cg local bench protocols --only ReLU --max-size 1e6 --no-write --json 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print([r["seconds"] for r in d["rows"] if r["elements"]==1000000][0])'
}
cg_infer() { # batch truncation [flags] -> warm cold rounds
  $cg local bench inference --model lenet:max --batch "$1" --truncation "$2" ${3:-} --no-write --json 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["seconds"], d["coldSeconds"], d["rounds"])'
}
row() { echo "$1 $2 $3 ${4:-x}" | tee -a "$out/t"; }
for rep in $(seq 1 "$reps"); do
  row relu1e6 mpspdz "$rep" "$(mpspdz bench_relu-1000000-20-63)"
  row relu1e6 cryptgpu "$rep" "$(cg_relu)"
  row lenet1 mpspdz "$rep" "$(mpspdz bench_lenet-1)"
  set -- $(cg_infer 1 corrected)
  row lenet1 cryptgpu-corrected "$rep" "${1:-x}"; row lenet1cold cryptgpu-corrected "$rep" "${2:-x}"
  set -- $(cg_infer 1 preprocessed --rehearse)
  row lenet1 cryptgpu-preprocessed-rehearsed "$rep" "${1:-x}"; row lenet1cold cryptgpu-preprocessed-rehearsed "$rep" "${2:-x}"
  row lenet64 mpspdz "$rep" "$(mpspdz bench_lenet-64)"
  set -- $(cg_infer 64 corrected)
  row lenet64 cryptgpu-corrected "$rep" "${1:-x}"; row lenet64cold cryptgpu-corrected "$rep" "${2:-x}"
done
echo "--- medians (s), and MP-SPDZ's time over cryptgpu's"
python3 - "$out/t" <<'PY'
import sys, statistics as st, collections
d = collections.defaultdict(list)
for line in open(sys.argv[1]):
    w, s, _, v = line.split()
    try: d[(w, s)].append(float(v))
    except ValueError: pass
for (w, s), v in sorted(d.items()):
    if s == "mpspdz" or w.endswith("cold"): continue
    ref = d.get((w, "mpspdz"))
    cold = d.get((w + "cold", s))
    line = f"{w:8s} {s:24s} {st.median(v):.3f}"
    if ref: line += f"  (MP-SPDZ {st.median(ref):.3f}: {st.median(ref) / st.median(v):.2f}x)"
    if cold: line += f"  cold {st.median(cold):.3f}" + (f" ({st.median(ref) / st.median(cold):.2f}x)" if ref else "")
    print(line)
PY
