// The report's opening section: what the run achieved (held-out reward before training, after the SFT
// warm-up, after RL; the accuracy per modality), how long it took and how fast it went, and the
// handful of config keys a reader needs to tell runs apart. Values come from summary.json when the run
// finished; a run still going (or killed) is summarised from metrics.jsonl alone, and what cannot be
// known shows as n/a.
import { parse } from 'yaml';
import type { RunFiles } from './run-files.js';
import { escapeXml } from './svg-chart.js';

/** The config keys shown at the top, as dotted paths into config.yaml. */
export const KEY_SETTINGS = [
  'worker.actor.model.model_path',
  'worker.actor.model.init',
  'data.train_files',
  'algorithm.adv_estimator',
  'algorithm.online_filtering',
  'algorithm.use_kl_loss',
  'algorithm.kl_coef',
  'worker.actor.loss_type',
  'worker.actor.optim.lr',
  'worker.actor.global_batch_size',
  'data.rollout_batch_size',
  'worker.rollout.n',
  'worker.rollout.temperature',
  'data.max_response_length',
  'sft.epochs',
  'sft.train_files',
  'trainer.max_steps',
  'trainer.total_epochs',
] as const;

export interface RunSummary {
  heldoutBeforeTrain: number | null;
  heldoutAfterSft: number | null;
  heldoutAfterRl: number | null;
  /** RL steps logged. */
  steps: number;
  /** Seconds of RL steps (the sum of timing/step), or null when none was logged. */
  seconds: number | null;
  /** Mean of perf/tokens_per_s over the steps, or null. */
  tokensPerSecond: number | null;
  /** Held-out accuracy per modality after SFT and after RL (summary.json; none with one modality). */
  accuracyByModality: { tag: string; afterSft: number | null; afterRl: number | null }[];
  settings: [string, string][];
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function at(tree: unknown, path: string): unknown {
  let node = tree;
  for (const key of path.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

function settingsOf(configText: string | null): [string, string][] {
  if (configText === null) return [];
  let tree: unknown;
  try {
    tree = parse(configText);
  } catch {
    return []; // the full text is shown further down either way
  }
  return KEY_SETTINGS.flatMap((k) => {
    const v = at(tree, k);
    return v === undefined || v === null
      ? []
      : [[k, typeof v === 'object' ? JSON.stringify(v) : String(v)] as [string, string]];
  });
}

export function summariseRun(run: RunFiles): RunSummary {
  const rl = run.metrics.filter((r) => r.step > 0);
  // Step 0 holds the validation before training and the SFT epochs (rows with sft/epoch).
  const before = run.metrics.find((r) => r.step === 0 && num(r['val/overall']) !== null);
  const stepSeconds = rl.map((r) => num(r['timing/step'])).filter((x): x is number => x !== null);
  const speeds = rl.map((r) => num(r['perf/tokens_per_s'])).filter((x): x is number => x !== null);
  const s = run.summary ?? {};
  return {
    heldoutBeforeTrain: num(s.heldout_reward_before_train) ?? (before ? num(before['val/overall']) : null),
    heldoutAfterSft: num(s.heldout_reward_after_sft),
    heldoutAfterRl: num(s.heldout_reward_after_rl),
    steps: rl.length ? Math.max(...rl.map((r) => r.step)) : 0,
    seconds: stepSeconds.length ? stepSeconds.reduce((a, b) => a + b, 0) : null,
    tokensPerSecond: speeds.length ? speeds.reduce((a, b) => a + b, 0) / speeds.length : null,
    accuracyByModality: byModality(s.heldout_accuracy_by_modality_after_sft, s.heldout_accuracy_by_modality_after_rl),
    settings: settingsOf(run.configText),
  };
}

function byModality(sft: unknown, rl: unknown): RunSummary['accuracyByModality'] {
  const record = (v: unknown) => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});
  const [a, b] = [record(sft), record(rl)];
  const tags = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return tags.map((tag) => ({ tag, afterSft: num(a[tag]), afterRl: num(b[tag]) }));
}

function fmt(v: number | null, digits: number): string {
  return v === null ? 'n/a' : v.toFixed(digits);
}

export function summaryHtml(s: RunSummary): string {
  const facts: [string, string][] = [
    ['held-out reward before training', fmt(s.heldoutBeforeTrain, 4)],
    ['held-out reward after SFT', fmt(s.heldoutAfterSft, 4)],
    ['held-out reward after RL', fmt(s.heldoutAfterRl, 4)],
    ['RL steps', String(s.steps)],
    ['time in RL steps', s.seconds === null ? 'n/a' : `${s.seconds.toFixed(1)} s`],
    ['tokens/s (mean over steps)', fmt(s.tokensPerSecond, 1)],
    ...s.accuracyByModality.map((m): [string, string] => [
      `held-out accuracy, ${m.tag} (after SFT, after RL)`,
      `${fmt(m.afterSft, 3)}, ${fmt(m.afterRl, 3)}`,
    ]),
  ];
  const row = ([k, v]: [string, string]) => `<tr><th>${escapeXml(k)}</th><td>${escapeXml(v)}</td></tr>`;
  return `<div class="summary">
<table class="facts"><tbody>${facts.map(row).join('')}</tbody></table>
<table class="settings"><tbody>${s.settings.length ? s.settings.map(row).join('') : '<tr><td>no config.yaml</td></tr>'}</tbody></table>
</div>`;
}
