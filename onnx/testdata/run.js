// Runs an ONNX model through onnxruntime-node for the onnx package's tests.
//
// Usage: node run.js JOB.json
//
// JOB.json: {"model": "m.onnx", "runs": [{"input": "x.f32", "shape": [N,C,X,Y,Z],
//            "outputs": {"output": "p.f32", "logits": "z.f32"}}, ...]}
// Each input file holds raw little-endian float32 values in row-major order;
// each named output is written the same way. Prints one JSON line with the
// output shapes of every run.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const session = await ort.InferenceSession.create(job.model, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const report = { inputs: session.inputNames, outputs: session.outputNames, runs: [] };
  for (const run of job.runs) {
    const buf = fs.readFileSync(run.input);
    const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const feeds = { input: new ort.Tensor('float32', data, run.shape) };
    const res = await session.run(feeds);
    const shapes = {};
    for (const [name, file] of Object.entries(run.outputs)) {
      const t = res[name];
      if (!t) throw new Error(`model has no output ${name}`);
      fs.writeFileSync(file, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      shapes[name] = t.dims;
    }
    report.runs.push(shapes);
  }
  console.log(JSON.stringify(report));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
