// Scripted OpenAI-compatible chat servers for the eval tests: node:http answering
// POST /v1/chat/completions with whatever the test's handler returns, after an optional delay,
// and keeping every request body so tests can check what was sent.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChatMessage } from '../../src/tokenizer/types.js';

export interface ChatBody {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  max_tokens?: number;
}

export type Handler = (body: ChatBody) => string | { status: number };

export interface ChatServer {
  url: string;
  requests: ChatBody[];
  /** Requests being answered right now, and the most seen at once. */
  inFlight: () => number;
  maxInFlight: () => number;
  close: () => Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startChatServer(handler: Handler, delayMs = 0): Promise<ChatServer> {
  const requests: ChatBody[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer((req, res) => {
    void (async () => {
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404).end();
        return;
      }
      const body = JSON.parse(await readBody(req)) as ChatBody;
      requests.push(body);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      inFlight--;
      const out = handler(body);
      if (typeof out !== 'string') {
        res
          .writeHead(out.status, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { message: 'scripted failure' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          id: `chatcmpl-${requests.length}`,
          object: 'chat.completion',
          created: 0,
          model: body.model,
          choices: [{ index: 0, message: { role: 'assistant', content: out }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        }),
      );
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    inFlight: () => inFlight,
    maxInFlight: () => maxInFlight,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

export function textOf(m: ChatMessage): string {
  return typeof m.content === 'string' ? m.content : m.content.map((p) => (p.type === 'text' ? p.text : '')).join('');
}

/** The fenced sections of medix's judge prompt, as a scripted judge reads them. */
export function judgeView(body: ChatBody): {
  prediction: string;
  reference: string;
  correctLetter?: string;
  rubric: boolean;
  replies: string[];
} {
  const user = textOf(body.messages[1]);
  const section = (label: string) => new RegExp(`${label}:\\n<<<\\n([\\s\\S]*?)\\n>>>`).exec(user)?.[1] ?? '';
  return {
    prediction: section('Candidate answer'),
    reference: section('Reference answer'),
    correctLetter: /The correct option is ([A-Z])\./.exec(user)?.[1],
    rubric: textOf(body.messages[0]).includes('0 to 5'),
    replies: body.messages.filter((m) => m.role === 'assistant').map(textOf),
  };
}

/**
 * The tests' judge: a prediction carrying "[votes a,b,c]" or "[rubric a,b,c]" gets those scores
 * round by round; "[malformed-once]" gets prose instead of JSON on its first reply;
 * "[malformed-always]" never gets JSON; "[http-500]" gets a server error. A bare option letter is 1
 * when it is the correct option's. Otherwise a binary verdict is 1 when the prediction contains the
 * reference text.
 */
export function scriptedVerdict(body: ChatBody): string | { status: number } {
  const v = judgeView(body);
  const validSoFar = v.replies.filter((r) => r.startsWith('{')).length;
  if (v.prediction.includes('[http-500]')) return { status: 500 };
  if (v.prediction.includes('[malformed-always]')) return 'I think the answer is probably right.';
  if (v.prediction.includes('[malformed-once]') && v.replies.length === 0) return 'Looks correct to me!';
  const scripted = /\[(?:votes|rubric) ([\d,]+)\]/.exec(v.prediction);
  if (scripted) return JSON.stringify({ score: Number(scripted[1].split(',')[validSoFar]) });
  const letter = /^\(?([A-Z])\)?\.?$/.exec(v.prediction.trim())?.[1];
  if (letter && v.correctLetter) return JSON.stringify({ score: letter === v.correctLetter ? 1 : 0 });
  return JSON.stringify({ score: v.prediction.toLowerCase().includes(v.reference.toLowerCase()) ? 1 : 0 });
}
