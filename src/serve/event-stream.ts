// Server-sent events as the OpenAI streaming API sends them: `data: {json}` events, then
// `data: [DONE]`.
import type http from 'node:http';

export class EventStream {
  /**
   * Headers (and the `opening` events) go out with the first event rather than at once, so a
   * request the engine refuses before its first token still gets a plain JSON 400.
   */
  constructor(
    private readonly res: http.ServerResponse,
    private readonly opening: unknown[] = [],
  ) {}

  /** A client that went away gets nothing more written (its generation is being aborted). */
  private get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  private start(): void {
    if (this.res.headersSent) return;
    this.res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    for (const body of this.opening) this.res.write(`data: ${JSON.stringify(body)}\n\n`);
  }

  send(body: unknown): void {
    if (!this.open) return;
    this.start();
    this.res.write(`data: ${JSON.stringify(body)}\n\n`);
  }

  end(): void {
    if (!this.open) return;
    this.start();
    this.res.end('data: [DONE]\n\n');
  }
}
