// Text rules of the MediX-R1 reward, written from the method's description: whitespace around tag
// characters is removed, the answer is the text inside <answer> (the whole response without one),
// the ground truth is "<TAG> answer", and some answers are invalid by construction.

/** Removes whitespace around '<', '>' and '/', so "< answer >" and "</ answer>" read as tags. */
export function squeezeTags(text: string): string {
  return text.replace(/\s*([<>/])\s*/g, '$1');
}

/**
 * The reference's answer normalisation, applied to the prediction and the ground truth alike:
 * trim whitespace, then strip leading and trailing periods (Python's `s.strip().strip(".")`).
 * "Aspirin..." becomes "Aspirin"; "3.5 cm" keeps its inner period. Nothing else changes: the
 * exact-match shortcut compares these strings as they are (case-sensitive).
 */
export function normalizeAnswer(text: string): string {
  return text.trim().replace(/^\.+|\.+$/g, '');
}

export interface GroundTruth {
  /** The modality tag with its brackets, e.g. "<X_RAY>" ('' when the ground truth has none). */
  tag: string;
  /** The answer after the tag, normalised by normalizeAnswer. */
  answer: string;
}

/** "<X_RAY> right lower lobe pneumonia." -> tag "<X_RAY>", answer "right lower lobe pneumonia". */
export function parseGroundTruth(gt: string): GroundTruth {
  const s = gt.trim();
  const close = s.indexOf('>');
  if (!s.startsWith('<') || close < 0) return { tag: '', answer: normalizeAnswer(s) };
  return { tag: s.slice(0, close + 1).replace(/\s+/g, ''), answer: normalizeAnswer(s.slice(close + 1)) };
}

/** Why a ground truth cannot be scored for accuracy (the reference scores it 0), or null. */
export function untaggedGroundTruthReason(gt: GroundTruth): string | null {
  return gt.tag ? null : 'ground truth has no <TAG> prefix (expected "<MODALITY> answer")';
}

/**
 * The text inside the first <answer>...</answer> (the whole response without a closed block),
 * normalised by normalizeAnswer. `tag` must be a plain tag name (the config's answer_tag).
 */
export function extractAnswer(response: string, tag = 'answer'): string {
  const r = squeezeTags(response);
  const open = r.indexOf(`<${tag}>`);
  const close = open < 0 ? -1 : r.indexOf(`</${tag}>`, open + tag.length + 2);
  return normalizeAnswer(close < 0 ? r : r.slice(open + tag.length + 2, close));
}

/** Why an extracted answer cannot be scored, or null when it can (the method's filters). */
export function invalidAnswerReason(answer: string): string | null {
  if (answer.length === 0) return 'empty answer';
  if ([...answer].length === 1) return 'one-character answer';
  if (answer.includes('__')) return "answer contains '__' (template placeholder)";
  if (answer.includes(':')) return "answer contains ':'";
  if (answer.includes('?')) return "answer contains '?'";
  return null;
}

/** Case, whitespace and unicode-form insensitive comparison form. */
export function comparable(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
}
