// Generation with a mixture-of-experts model routes every decode step as the full forward does:
// greedy decoding with the KV cache (prefills of several prompts, then batched one-token steps)
// equals decoding with full forwards token for token, and the returned log-probs equal Model.forward.
import t from 'tap';

import { packSequences } from '../../src/engine/model.js';
import { Qwen3GenerationEngine } from '../../src/generate/engine.js';
import { greedyByFullForwards, tinyModel } from './helpers.js';

const moe = { numExperts: 6, numExpertsPerTok: 2, moeIntermediateSize: 16, normTopkProb: true, mlpOnlyLayers: [] };
const prompts = [
  [5, 9, 2, 33, 17, 8, 21],
  [1, 2, 3],
  [40, 12, 7, 7, 30, 11, 4, 19, 26, 3, 3, 45, 2, 14, 9, 16, 22, 38],
];

for (const normTopkProb of [true, false])
  t.test(`greedy decoding with the KV cache equals full forwards (norm_topk_prob ${normTopkProb})`, async (t) => {
    const model = tinyModel(1, { ...moe, normTopkProb });
    const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
    const steps = 10;
    const results = await Promise.all(
      prompts.map((promptIds) =>
        engine.generate({ promptIds, params: { temperature: 0, maxNewTokens: steps, ignoreEos: true } }),
      ),
    );
    for (const [i, promptIds] of prompts.entries()) {
      const seq = await greedyByFullForwards(model, promptIds, steps);
      t.same(results[i].samples[0].tokenIds, seq.slice(promptIds.length), `prompt ${i}`);
      const { logp } = await model.forward(packSequences([seq]));
      const want = Array.from(logp.subarray(promptIds.length - 1, seq.length - 1));
      const worst = Math.max(...want.map((w, k) => Math.abs(w - results[i].samples[0].logprobs[k])));
      t.ok(worst < 1e-4, `prompt ${i}: log-probs as Model.forward (worst |diff| ${worst.toExponential(2)})`);
    }
    await engine.close();
  });
