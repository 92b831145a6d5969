// Next-token probabilities in the browser, in float64 over the FULL vocabulary: the same numbers as
// model/sampling.py `probabilities` (temperature, then top-k, then top-p, ties to the lower id) and
// `entropy_bits`. Shared by the component (bars.js is appended to this file) and by node in the tests.

const MASS_TOLERANCE = 1e-12; // model/sampling.py's slack: cumulative sums carry rounding

/** Little-endian float32 logits sent from Python as base64 -> Float64Array (exact widening). */
export function decodeLogits(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return Float64Array.from(new Float32Array(bytes.buffer));
}

/** Token ids by descending logit, ties to the lower id: the order of every distribution at T > 0. */
export function rankByLogit(logits) {
  const order = Int32Array.from(logits.keys());
  return order.sort((a, b) => logits[b] - logits[a] || a - b);
}

/** The `count` most likely ids under p, ties to the lower id. p is non-increasing along `order`,
 *  so a tie is a run of equal p there; a run cut by the boundary keeps its lowest ids. */
function mostLikely(order, p, count) {
  if (count >= order.length) return order;
  const edge = p[order[count - 1]];
  if (p[order[count]] !== edge) return order.subarray(0, count);
  let start = count - 1;
  while (start > 0 && p[order[start - 1]] === edge) start -= 1;
  let end = count;
  while (end < order.length && p[order[end]] === edge) end += 1;
  const run = Int32Array.from(order.subarray(start, end)).sort();
  const kept = new Int32Array(count);
  kept.set(order.subarray(0, start));
  kept.set(run.subarray(0, count - start), start);
  return kept;
}

function keepOnly(p, ids) {
  let total = 0;
  for (const i of ids) total += p[i];
  const out = new Float64Array(p.length);
  for (const i of ids) out[i] = p[i] / total;
  return out;
}

/** (V,) probabilities at `temperature` (0 = greedy one-hot) with top-k (0 = off) and top-p
 *  (1 = off); `order` is rankByLogit(logits). Mirrors model.sampling.probabilities. */
export function probabilities(logits, order, temperature, topK = 0, topP = 1) {
  if (!Number.isFinite(temperature) || temperature < 0) throw new RangeError(`temperature ${temperature}`);
  let p = new Float64Array(logits.length);
  if (temperature === 0) {
    p[order[0]] = 1; // argmax, the lower id on a tie; no filter can drop it
    return p;
  }
  const top = logits[order[0]];
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += p[i] = Math.exp((logits[i] - top) / temperature);
  for (let i = 0; i < p.length; i++) p[i] /= total;
  if (topK > 0 && topK < p.length) p = keepOnly(p, mostLikely(order, p, topK));
  if (topP < 1) {
    const ranked = order.filter((i) => p[i] > 0); // top-k's zeros may sit inside a tied run
    let mass = 0;
    let n = ranked.length;
    for (let i = 0; i < ranked.length; i++) {
      mass += p[ranked[i]]; // p's ranking up to runs of equal p, which sum alike in any order
      if (mass >= topP - MASS_TOLERANCE) { n = i + 1; break; }
    }
    p = keepOnly(p, mostLikely(ranked, p, n));
  }
  return p;
}

/** Shannon entropy in bits (0 for a one-hot distribution). */
export function entropyBits(p) {
  let h = 0;
  for (const q of p) if (q > 0) h -= q * Math.log2(q);
  return h;
}

/** What the bars show for token ids `ids`: probabilities, the rest of the vocabulary, entropy. */
export function barNumbers(p, ids) {
  const probs = Array.from(ids, (i) => p[i]);
  const shown = probs.reduce((a, b) => a + b, 0);
  return { probs, rest: Math.max(0, 1 - shown), entropy: entropyBits(p) };
}
