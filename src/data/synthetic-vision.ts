// A seeded data set of synthetic medical-style images for the visual quickstart: chest radiographs
// with an opacity in one lung, CT slices with or without a lesion, fundus photographs with the optic
// disc on one side. Every question of a kind has the same text, so only the image tells the answer
// apart; the answers are short and checkable ("left", "yes") and balanced within each kind, so a
// policy that ignores the image scores 1/2 (imageAccuracyChance). Shapes, sizes, brightness and
// noise are drawn from the seed: the same seed writes the same bytes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { prng } from '../util/prng.js';

export interface VisionDatasetOptions {
  seed: number;
  /** Rows of each kind in the train and held-out files (each kind's answers alternate, so both are balanced when even). */
  trainPerKind: number;
  heldoutPerKind: number;
  /** Side of the square images written, in pixels. */
  size?: number;
}

export interface VisionDatasetFiles {
  train: string;
  heldout: string;
}

interface Kind {
  name: string;
  tag: string;
  question: string;
  answers: [string, string];
  /** RGB bytes of an image whose answer is answers[which]. */
  draw(size: number, which: number, rand: () => number): Uint8Array;
}

type Canvas = Float32Array; // grey or RGB values in [0, 1], row-major

/** Adds `value` × a soft-edged ellipse (centre cx, cy; radii rx, ry; all in pixels) to channel c of an RGB canvas. */
function ellipse(
  img: Canvas,
  size: number,
  c: number,
  cx: number,
  cy: number,
  rx: number,
  ry: number,
  value: number,
): void {
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const d = Math.hypot((x - cx) / rx, (y - cy) / ry);
      if (d < 1.15) img[(y * size + x) * 3 + c] += value * Math.min(1, (1.15 - d) / 0.3);
    }
}

function grey(img: Canvas, size: number, cx: number, cy: number, rx: number, ry: number, value: number): void {
  for (let c = 0; c < 3; c++) ellipse(img, size, c, cx, cy, rx, ry, value);
}

function toBytes(img: Canvas, rand: () => number, noise: number, mono: boolean): Uint8Array {
  const out = new Uint8Array(img.length);
  for (let p = 0; p < img.length; p += 3) {
    const shared = (rand() - 0.5) * noise;
    for (let c = 0; c < 3; c++) {
      const v = img[p + c] + (mono ? shared : (rand() - 0.5) * noise);
      out[p + c] = Math.round(255 * Math.min(1, Math.max(0, v)));
    }
  }
  return out;
}

const jitter = (rand: () => number, s: number) => (rand() - 0.5) * 2 * s;

/** A frontal radiograph as displayed: the patient's left lung is on the viewer's right. */
function chestRadiograph(size: number, which: number, rand: () => number): Uint8Array {
  const img: Canvas = new Float32Array(size * size * 3);
  const s = size / 128;
  grey(img, size, 64 * s, 70 * s, 54 * s, 58 * s, 0.45 + jitter(rand, 0.05)); // thorax
  for (const side of [-1, 1]) grey(img, size, (64 + side * 24) * s, 64 * s, 17 * s, 38 * s, -0.3); // lungs
  grey(img, size, 64 * s, 70 * s, 7 * s, 52 * s, 0.2); // spine and mediastinum
  const viewerSide = which === 0 ? 1 : -1; // answers[0] = 'left' (patient's left, viewer's right)
  // A lobar consolidation: a large opacity filling much of one lung field.
  grey(
    img,
    size,
    (64 + viewerSide * 24 + jitter(rand, 3)) * s,
    (72 + jitter(rand, 10)) * s,
    (15 + jitter(rand, 2)) * s,
    (22 + jitter(rand, 4)) * s,
    0.4 + jitter(rand, 0.05),
  );
  return toBytes(img, rand, 0.12, true);
}

/** An axial slice: the body outline, two kidney-like shapes, a vertebra, and in half of them a dark round lesion. */
function ctSlice(size: number, which: number, rand: () => number): Uint8Array {
  const img: Canvas = new Float32Array(size * size * 3);
  const s = size / 128;
  grey(img, size, 64 * s, 64 * s, (50 + jitter(rand, 4)) * s, (40 + jitter(rand, 4)) * s, 0.4);
  for (const side of [-1, 1]) grey(img, size, (64 + side * 26) * s, 70 * s, 8 * s, 11 * s, 0.15);
  grey(img, size, 64 * s, 84 * s, 6 * s, 6 * s, 0.4); // vertebra
  if (which === 0) {
    const angle = rand() * 2 * Math.PI,
      r = 8 + rand() * 14; // answers[0] = 'yes'
    grey(img, size, (64 + Math.cos(angle) * r) * s, (60 + Math.sin(angle) * r * 0.7) * s, 14 * s, 14 * s, -0.35);
  }
  return toBytes(img, rand, 0.1, true);
}

/** A fundus photograph: an orange-red disc, the bright optic disc on the viewer's left or right. */
function fundus(size: number, which: number, rand: () => number): Uint8Array {
  const img: Canvas = new Float32Array(size * size * 3);
  const s = size / 128;
  const tint = [0.75, 0.3, 0.12];
  tint.forEach((v, c) => ellipse(img, size, c, 64 * s, 64 * s, 56 * s, 56 * s, v + jitter(rand, 0.05)));
  const side = which === 0 ? -1 : 1; // answers[0] = 'left'
  const cx = (64 + side * (30 + jitter(rand, 5))) * s,
    cy = (64 + jitter(rand, 10)) * s;
  [0.25, 0.6, 0.6].forEach((v, c) => ellipse(img, size, c, cx, cy, 16 * s, 17 * s, v));
  return toBytes(img, rand, 0.08, false);
}

export const VISION_KINDS: readonly Kind[] = [
  {
    name: 'cxr',
    tag: '<X_RAY>',
    question: 'On which side of the patient is the lung opacity? Answer left or right.',
    answers: ['left', 'right'],
    draw: chestRadiograph,
  },
  {
    name: 'ct',
    tag: '<CT_SCAN>',
    question: 'Does this slice show a focal lesion? Answer yes or no.',
    answers: ['yes', 'no'],
    draw: ctSlice,
  },
  {
    name: 'fundus',
    tag: '<FUNDUS_PHOTOGRAPHY>',
    question: 'On which side of the image is the optic disc? Answer left or right.',
    answers: ['left', 'right'],
    draw: fundus,
  },
];

/** Expected accuracy of a policy that never looks at the image: every kind's two answers are equally frequent. */
export function imageAccuracyChance(): number {
  return VISION_KINDS.reduce((s, k) => s + 1 / k.answers.length, 0) / VISION_KINDS.length;
}

/**
 * Writes images/<split>-<kind>-<i>.png and train.jsonl / heldout.jsonl (problem, solution, images)
 * under `dir`. The held-out images are other draws than the train ones.
 */
export async function writeVisionDataset(dir: string, o: VisionDatasetOptions): Promise<VisionDatasetFiles> {
  const size = o.size ?? 128;
  mkdirSync(join(dir, 'images'), { recursive: true });
  const files = { train: join(dir, 'train.jsonl'), heldout: join(dir, 'heldout.jsonl') };
  for (const [split, perKind, salt] of [
    ['train', o.trainPerKind, 1],
    ['heldout', o.heldoutPerKind, 2],
  ] as const) {
    const rows: string[] = [];
    for (let i = 0; i < perKind; i++)
      for (const [k, kind] of VISION_KINDS.entries()) {
        const rand = prng(o.seed * 7919 + salt * 104729 + k * 1_000_003 + i);
        const which = i % 2;
        const image = `images/${split}-${kind.name}-${String(i).padStart(3, '0')}.png`;
        const rgb = kind.draw(size, which, rand);
        const png = await sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
          .png({ compressionLevel: 9 })
          .toBuffer();
        writeFileSync(join(dir, image), png);
        rows.push(
          JSON.stringify({
            id: `${split}-${kind.name}-${i}`,
            problem: kind.question,
            solution: `${kind.tag} ${kind.answers[which]}`,
            images: [image],
          }),
        );
      }
    writeFileSync(files[split], `${rows.join('\n')}\n`);
  }
  return files;
}
