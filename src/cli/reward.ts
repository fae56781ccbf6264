// `medix reward --config FILE [--input IN.jsonl] [--output OUT.jsonl]`: scores {"response",
// "ground_truth"} records (stdin/stdout by default) with the composite reward, one output line per
// input line, in input order, with every component under the method's names.
import type { Command } from 'commander';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseRewardConfig } from '../reward/config.js';
import { CompositeReward, type RewardResult } from '../reward/composite.js';
import { REWARD_COMPONENTS } from '../reward/components.js';
import { atomicWriteFileSync } from '../util/atomic-write.js';
import { utf8Lines } from '../util/utf8-lines.js';

export function registerReward(program: Command): void {
  program
    .command('reward')
    .description('score {"response","ground_truth"} JSONL records with the composite medical reward')
    .option('--config <file>', 'reward config (YAML or JSON); defaults when omitted')
    .option('--input <file>', 'input JSONL (default stdin)')
    .option('--output <file>', 'output JSONL (default stdout)')
    .option('--rescore', "input records may be an earlier run's output: their reward fields are replaced")
    .action(async (opts: { config?: string; input?: string; output?: string; rescore?: boolean }) => {
      const raw = opts.config ? readConfigFile(opts.config) : {};
      const section = raw && typeof raw === 'object' && 'reward' in raw ? (raw as { reward: unknown }).reward : raw;
      const config = parseRewardConfig(section, opts.config ?? 'reward config');
      // Pipes (--input /dev/stdin, <(...)) are fine: only a missing path or a folder is refused, before any work.
      if (opts.input && !existsSync(opts.input)) throw new Error(`--input ${opts.input}: no such file`);
      if (opts.input && statSync(opts.input).isDirectory()) throw new Error(`--input ${opts.input}: a folder`);
      const reward = await CompositeReward.create(config, {
        baseDir: opts.config ? dirname(opts.config) : undefined,
        warn: (m) => console.error(m),
      });
      const where = opts.input ?? 'stdin';
      const pending: Promise<string>[] = [];
      const records: string[] = [];
      // worker.reward.reward_function (EasyR1's hook) runs on each line as a group of one response; it is
      // told the response's length in tokens, which only the record can say.
      const hook = config.reward_function !== undefined;
      try {
        // Read whole, then split on bytes: a line that is not UTF-8 is named, never scored as U+FFFD text.
        const input = await readAll(opts.input ? createReadStream(opts.input) : process.stdin);
        for (const { line: n, text: line } of utf8Lines(input)) {
          const at = `${where}:${n}`;
          if (line === null) throw new Error(`${at}: not valid UTF-8`);
          if (line.trim() === '') continue;
          const rec = parseRecord(line, at, opts.rescore === true);
          const responseLength = hook ? tokenCount(rec, at) : 0;
          const result = hook
            ? reward.scoreGroup([{ response: rec.response, responseLength }], rec.ground_truth).then((r) => r[0])
            : reward.score(rec.response, rec.ground_truth);
          // Scored concurrently (judge calls overlap), written in input order; a failure names its line.
          const scored = result.then(
            (r) => JSON.stringify({ ...rec, ...r }),
            (e: unknown) => {
              throw new Error(`${at}: ${(e as Error).message}`);
            },
          );
          scored.catch(() => {}); // awaited in order below: a later line's failure is not unhandled meanwhile
          pending.push(scored);
        }
        for (const p of pending) records.push(`${await p}\n`);
      } catch (e) {
        // The judge's verdicts so far still reach its cache file; the error that names the line is the one shown.
        await reward.close().catch(() => {});
        throw e;
      }
      await reward.close();
      // The output appears whole or not at all: a failure midway never leaves a partial file.
      if (opts.output) atomicWriteFileSync(opts.output, records.join(''));
      else for (const r of records) process.stdout.write(r);
      const s = reward.stats;
      console.error(
        `medix reward: ${s.scored} scored, ${s.dropped} dropped, ${s.exactMatches} exact matches; judge: ${s.judgeCalls} calls, ${s.judgeCacheHits} cache hits, ${s.judgeUnavailable} unavailable`,
      );
    });
}

/** The fields `medix reward` writes into each record: an input field of the same name would be lost. */
const OUTPUT_FIELDS: readonly (keyof RewardResult)[] = [...REWARD_COMPONENTS, 'custom', 'reasons', 'unavailable'];

function parseRecord(line: string, at: string, rescore: boolean): { response: string; ground_truth: string } {
  let rec: Record<string, unknown> | null;
  try {
    rec = JSON.parse(line);
  } catch {
    throw new Error(`${at}: not valid JSON`);
  }
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec))
    throw new Error(`${at}: expected a JSON object with 'response' and 'ground_truth'`);
  if (typeof rec.response !== 'string') throw new Error(`${at}: field 'response' must be a string`);
  if (typeof rec.ground_truth !== 'string') throw new Error(`${at}: field 'ground_truth' must be a string`);
  if (rescore) for (const f of OUTPUT_FIELDS) delete rec[f];
  const taken = OUTPUT_FIELDS.find((f) => f in (rec as object));
  if (taken)
    throw new Error(
      `${at}: field '${taken}' would be replaced by the reward's own '${taken}'; rename or remove it ` +
        "(or pass --rescore when the input is an earlier run's output)",
    );
  return rec as { response: string; ground_truth: string };
}

/** The record's response_length: its response's length in tokens, which reward_function is given. */
function tokenCount(rec: Record<string, unknown>, at: string): number {
  const n = rec.response_length;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
    throw new Error(
      `${at}: field 'response_length' (the response's length in tokens) must be an integer >= 0: ` +
        'reward_function is given it',
    );
  return n;
}

function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`reward config ${file}: cannot read (${(e as Error).message})`);
  }
  try {
    return parseYaml(text);
  } catch (e) {
    throw new Error(`reward config ${file}: not valid YAML (${(e as Error).message})`);
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
