// Judging: reasoning removed before judging, every sample asked of a judge that does not think, verdict parsing, the vote and
// the 0-5 mean, three rounds in one conversation, malformed replies retried then recorded as errors
// (never as a 0).
import t from 'tap';
import { stripReasoning } from '../../src/eval/answer.js';
import { combineRounds, parseVerdict } from '../../src/eval/verdict.js';
import { judgeSample } from '../../src/eval/judge-sample.js';
import { judgeMessages, MAX_PREDICTION_CHARS } from '../../src/eval/judge-prompt.js';
import { DEFAULTS } from '../../src/eval/run-eval.js';
import type { ChatModel, ChatRequest } from '../../src/eval/chat.js';
import type { GenerationRecord } from '../../src/eval/records.js';
import { scriptedVerdict } from './chat-servers.js';

t.test('reasoning is stripped after the last </think> or </thinking>', async (t) => {
  t.equal(stripReasoning('<think>maybe A</think>\n\nB'), 'B');
  t.equal(stripReasoning('<thinking>x</thinking> <answer>Calcaneus</answer>'), '<answer>Calcaneus</answer>');
  t.equal(stripReasoning('<think>a</think>mid<think>b</think> final'), 'final', 'the last closing tag counts');
  t.equal(stripReasoning('<THINKING>a</THINKING>Final'), 'Final', 'case-insensitive');
  t.equal(stripReasoning('Plain answer.'), 'Plain answer.');
  t.equal(
    stripReasoning('<think>cut off while reasoning about A '),
    '<think>cut off while reasoning about A',
    'without a closing tag the whole text is judged, as the reference does',
  );
});

t.test('verdicts: JSON found in prose, fences and reasoning; anything else is malformed', async (t) => {
  t.same(parseVerdict('{"score": 1}', 'binary'), { ok: true, score: 1 });
  t.same(parseVerdict('```json\n{"score": 0}\n```', 'binary'), { ok: true, score: 0 });
  t.same(parseVerdict('<think>{"score": 0}? no</think>Verdict: {"score": 1}', 'binary'), { ok: true, score: 1 });
  t.same(parseVerdict('{"score": "4"}', 'rubric'), { ok: true, score: 4 });
  t.same(parseVerdict('{"score": 3.5}', 'rubric'), { ok: true, score: 3.5 });
  for (const [reply, scoring] of [
    ['Correct!', 'binary'],
    ['{"score": 2}', 'binary'],
    ['{"score": 6}', 'rubric'],
    ['{"score": -1}', 'rubric'],
    ['{"verdict": 1}', 'binary'],
    ['{"score": "yes"}', 'binary'],
    ['{"score": null}', 'rubric'],
    ['', 'binary'],
  ] as const)
    t.equal(parseVerdict(reply, scoring).ok, false, `${JSON.stringify(reply)} (${scoring}) is malformed`);
});

t.test('rounds: majority vote for 0/1, mean / 5 for 0-5', async (t) => {
  t.equal(combineRounds([1, 0, 1], 'binary'), 1);
  t.equal(combineRounds([0, 0, 1], 'binary'), 0);
  t.equal(combineRounds([1, 1, 1], 'binary'), 1);
  t.equal(combineRounds([1, 0], 'binary'), 0, 'a tie is not a majority');
  t.equal(combineRounds([4, 5, 3], 'rubric'), 0.8);
  t.equal(combineRounds([0, 1, 2], 'rubric'), 0.2);
  t.throws(() => combineRounds([], 'binary'));
});

t.test('the judge prompt fences and caps the prediction and names the correct option', async (t) => {
  const [system, user] = judgeMessages({
    scoring: 'binary',
    question: 'Q?\nChoices:\nA. x\nB. y',
    reference: 'y',
    prediction: 'z'.repeat(MAX_PREDICTION_CHARS + 50),
    choices: ['x', 'y'],
    answerIndex: 1,
  });
  t.match(system.content as string, /letter of the correct option/);
  t.match(user.content as string, 'The correct option is B.');
  t.ok((user.content as string).length < MAX_PREDICTION_CHARS + 400, 'prediction capped');
  t.match(user.content as string, '[... cut]');
});

/** An in-memory judge answering with scriptedVerdict and keeping each request's messages. */
function scriptedJudge(): ChatModel & { requests: ChatRequest[] } {
  const requests: ChatRequest[] = [];
  return {
    name: 'scripted',
    requests,
    async chat(request) {
      requests.push({ ...request, messages: [...request.messages] });
      const out = scriptedVerdict({ model: 'scripted', messages: request.messages });
      if (typeof out !== 'string') throw new Error(`HTTP ${out.status}`);
      return { text: out, finishReason: 'stop' };
    },
  };
}

function generation(output: string, over: Partial<GenerationRecord> = {}): GenerationRecord {
  return {
    key: 't/1',
    task: 't',
    id: '1',
    status: 'ok',
    scoring: 'binary',
    prompt: 'Which nerve?',
    reference: 'Phrenic',
    images: 0,
    output,
    seconds: 0,
    ...over,
  };
}
const opts = { rounds: 3, attemptsPerRound: 3, maxTokens: 64 };

t.test('three rounds in one conversation, majority vote', async (t) => {
  const judge = scriptedJudge();
  const r = await judgeSample(judge, generation('<think>hmm</think>phrenic nerve [votes 0,1,1]'), opts);
  t.equal(r.status, 'ok');
  t.equal(r.score, 1, '0,1,1 -> 1');
  t.same(
    r.rounds.map((x) => x.score),
    [0, 1, 1],
  );
  t.equal(r.prediction, 'phrenic nerve [votes 0,1,1]', 'judged without the reasoning');
  t.equal(judge.requests.length, 3);
  t.same(
    judge.requests.map((q) => q.messages.map((m) => m.role).join(',')),
    ['system,user', 'system,user,assistant,user', 'system,user,assistant,user,assistant,user'],
    'one growing conversation',
  );
  t.ok(
    judge.requests.every((q) => q.temperature === 0),
    'judge at temperature 0',
  );
  t.equal((await judgeSample(scriptedJudge(), generation('x [votes 1,0,0]'), opts)).score, 0, '1,0,0 -> 0');
});

t.test('0-5 rubric: the mean of the rounds over 5', async (t) => {
  const r = await judgeSample(scriptedJudge(), generation('report [rubric 4,5,3]', { scoring: 'rubric' }), opts);
  t.equal(r.score, 0.8);
  t.same(
    r.rounds.map((x) => x.score),
    [4, 5, 3],
  );
});

t.test('malformed judge output is retried with a correction, then recorded as an error', async (t) => {
  const judge = scriptedJudge();
  const once = await judgeSample(judge, generation('Phrenic [malformed-once]'), opts);
  t.equal(once.status, 'ok');
  t.equal(once.score, 1);
  t.equal(once.rounds.length, 4, 'the malformed reply is kept, then three verdicts');
  t.match(textOfLast(judge.requests[1]), /could not be used/, 'the retry tells the judge what was wrong');

  const always = await judgeSample(scriptedJudge(), generation('Phrenic [malformed-always]'), {
    ...opts,
    attemptsPerRound: 2,
  });
  t.equal(always.status, 'error');
  t.equal(always.score, undefined, 'no score, not a 0');
  t.match(always.error!, /round 1: no valid verdict in 2 replies/);

  const down = await judgeSample(scriptedJudge(), generation('Phrenic [http-500]'), opts);
  t.equal(down.status, 'error');
  t.equal(down.score, undefined);
  t.match(down.error!, /judge request failed: HTTP 500/);
});

t.test('every sample goes to the judge, option letters included, and the judge does not think', async (t) => {
  const judge = scriptedJudge();
  const mc = { choices: ['Vagus', 'Phrenic', 'Accessory'], answer_index: 1 };
  const right = await judgeSample(judge, generation('<think>C5</think>B', mc), opts);
  t.equal(judge.requests.length, opts.rounds, 'a bare right letter is asked of the judge, every round');
  const wrong = await judgeSample(judge, generation('<think>C5</think>(C)', mc), opts);
  t.same([right.score, wrong.score], [1, 0], "the judge's verdicts, not a rule's");
  t.equal(judge.requests.length, 2 * opts.rounds);
  for (const r of judge.requests) {
    t.equal(r.thinking, false, 'enable_thinking: false');
    const users = r.messages.filter((m) => m.role === 'user');
    t.ok(
      users.every((m) => typeof m.content === 'string' && m.content.endsWith(' /no_think')),
      'every user turn ends with /no_think',
    );
  }
  t.equal(DEFAULTS.judgeMaxTokens, 512, "the reference's judge budget");
});

function textOfLast(r: ChatRequest): string {
  const m = r.messages.at(-1)!;
  return typeof m.content === 'string' ? m.content : '';
}
