#!/usr/bin/env bash
# Regenerates lib/io/onnx/onnx_pb.ts from lib/io/onnx/onnx.proto with buf and protoc-gen-es (both from npm).
# The generated file is committed: building and testing need neither tool.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --silent @bufbuild/buf@1.75.0 @bufbuild/protoc-gen-es@2.17.0 >/dev/null
cp "$root/lib/io/onnx/onnx.proto" .
cat > buf.gen.yaml <<'YAML'
version: v2
inputs:
  - directory: .
plugins:
  - local: protoc-gen-es
    out: gen
    opt: [target=ts, import_extension=ts]
YAML
PATH="$work/node_modules/.bin:$PATH" buf generate
cp gen/onnx_pb.ts "$root/lib/io/onnx/onnx_pb.ts"
echo "wrote lib/io/onnx/onnx_pb.ts"
