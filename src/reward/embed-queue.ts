// Gathers the texts that concurrent scoring calls want embedded into shared ONNX batches: a request
// waits at most until the current turn of the event loop ends (or until a batch is full), and
// recent texts are remembered, since a prompt's reference answer recurs in every one of its rollouts.
import type { OnnxEmbedder } from './embedding.js';

interface Waiting {
  text: string;
  resolve: (v: Float32Array) => void;
  reject: (e: unknown) => void;
}

export class EmbedQueue {
  private waiting: Waiting[] = [];
  private scheduled = false;
  private readonly recent = new Map<string, Promise<Float32Array>>();
  /** ONNX runs so far, and texts they embedded (benchmarks and tests read them). */
  runs = 0;
  embedded = 0;

  constructor(
    private readonly embedder: OnnxEmbedder,
    private readonly remember = 4096,
  ) {}

  embed(text: string): Promise<Float32Array> {
    const known = this.recent.get(text);
    if (known) return known;
    const p = new Promise<Float32Array>((resolve, reject) => {
      this.waiting.push({ text, resolve, reject });
      if (this.waiting.length >= this.embedder.options.batchSize) this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
    this.recent.set(text, p);
    // Map iteration order is insertion order: the first key is the oldest.
    if (this.recent.size > this.remember) this.recent.delete(this.recent.keys().next().value as string);
    p.catch(() => this.recent.delete(text));
    return p;
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.waiting;
    if (batch.length === 0) return;
    this.waiting = [];
    this.runs++;
    this.embedded += batch.length;
    this.embedder.embed(batch.map((w) => w.text)).then(
      (vectors) => batch.forEach((w, i) => w.resolve(vectors[i])),
      (e: unknown) => batch.forEach((w) => w.reject(e)),
    );
  }
}
