// Runs a TF.js graph model (from `usmr convert --to tfjs`) in Node.js with pure-JS
// @tensorflow/tfjs, reading model.json and the weight shards from disk.
//
//   NODE_PATH=.venv-tfjs/node/node_modules node examples/tfjs_predict.cjs \
//       web_model/model.json input.json output.json
//
// input.json / output.json: {"shape": [B, S, S, 1], "data": [flat float32 values]}
// (us_image in [-1, 1] -> mri_image). Outputs are research images, not diagnoses.
const fs = require("fs");
const path = require("path");
const tf = require("@tensorflow/tfjs");

function loadFromDisk(modelJsonPath) {
  const modelJson = JSON.parse(fs.readFileSync(modelJsonPath, "utf8"));
  const dir = path.dirname(modelJsonPath);
  const weightSpecs = [];
  const buffers = [];
  for (const group of modelJson.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const shard of group.paths) buffers.push(fs.readFileSync(path.join(dir, shard)));
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.io.fromMemory({
    modelTopology: modelJson.modelTopology,
    format: modelJson.format,
    generatedBy: modelJson.generatedBy,
    convertedBy: modelJson.convertedBy,
    signature: modelJson.signature,
    userDefinedMetadata: modelJson.userDefinedMetadata,
    weightSpecs,
    weightData,
  });
}

async function main() {
  const [modelJsonPath, inputPath, outputPath] = process.argv.slice(2);
  if (!outputPath) {
    console.error("usage: node tfjs_predict.cjs model.json input.json output.json");
    process.exit(2);
  }
  await tf.setBackend("cpu");
  const model = await tf.loadGraphModel(loadFromDisk(modelJsonPath));
  const input = JSON.parse(fs.readFileSync(inputPath, "utf8"));
  const x = tf.tensor(Float32Array.from(input.data), input.shape, "float32");
  const y = model.execute({ us_image: x });
  const out = Array.isArray(y) ? y[0] : y;
  fs.writeFileSync(outputPath, JSON.stringify({ shape: out.shape, data: Array.from(await out.data()) }));
  console.log(`predicted ${out.shape} with TF.js ${tf.version.tfjs} (${tf.getBackend()} backend)`);
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exit(1);
});
