// A local OpenAI-compatible judge for reward tests: answers YES when the predicted answer shares a
// word of 5+ letters with the reference, after a fixed delay, counting requests and the most in
// flight at once; fails every request with 503 while `fail` is set.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Judge {
  url: string;
  requests: number;
  peak: number;
  /** The user message of every request, in arrival order. */
  prompts: string[];
  fail: boolean;
  close: () => Promise<void>;
}

export async function judgeServer(delayMs: number): Promise<Judge> {
  let inFlight = 0;
  const j = { requests: 0, peak: 0, fail: false, prompts: [] as string[] } as Judge;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      j.requests++;
      j.peak = Math.max(j.peak, ++inFlight);
      setTimeout(() => {
        inFlight--;
        if (j.fail) {
          res.writeHead(503).end('down');
          return;
        }
        const user = JSON.parse(body).messages[1].content as string;
        j.prompts.push(user);
        const [ref, pred] = [...user.matchAll(/answer: (".*")/g)].map((m) => JSON.parse(m[1]) as string);
        const words = (s: string) => new Set(s.toLowerCase().match(/[a-z]{5,}/g) ?? []);
        const yes = [...words(pred)].some((w) => words(ref).has(w));
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ choices: [{ message: { content: yes ? 'YES' : 'NO' }, finish_reason: 'stop' }] }));
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  j.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  j.close = () => new Promise((r) => server.close(() => r()));
  return j;
}
