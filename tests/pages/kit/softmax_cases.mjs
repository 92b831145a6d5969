// Test driver: run the component's own math (pages/kit/temperature_bars/softmax.mjs) under node.
// argv: a JSON file {logits: base64 float32, ids: [...], cases: [[t, k, p], ...]} and an output
// folder; writes case_<i>.f64 (the (V,) probabilities, float64) and summary.json.
import { readFileSync, writeFileSync } from "node:fs";
import { barNumbers, decodeLogits, probabilities, rankByLogit } from "../../../pages/kit/temperature_bars/softmax.mjs";

const [input, out] = process.argv.slice(2);
const { logits: b64, ids, cases } = JSON.parse(readFileSync(input, "utf8"));
const logits = decodeLogits(b64);
const order = rankByLogit(logits);
const summary = { order: Array.from(order.subarray(0, ids.length)), cases: [] };
cases.forEach(([t, k, p], i) => {
  const probs = probabilities(logits, order, t, k, p);
  writeFileSync(`${out}/case_${i}.f64`, Buffer.from(probs.buffer));
  summary.cases.push(barNumbers(probs, ids));
});
writeFileSync(`${out}/summary.json`, JSON.stringify(summary));
