// The method's text rules, pinned with edge cases: tag squeezing, answer extraction, ground truth,
// invalid answers, format (incl. nested/repeated blocks), modality.
import t from 'tap';
import { extractAnswer, invalidAnswerReason, parseGroundTruth, squeezeTags } from '../../src/reward/normalize.js';
import { formatScore, modalityScore } from '../../src/reward/rules.js';

t.test('squeezing, extraction, ground truth', async (t) => {
  t.equal(squeezeTags('< answer > x </ answer >'), '<answer>x</answer>');
  t.equal(extractAnswer('<thinking>a</thinking><answer> Lobar pneumonia. </answer>'), 'Lobar pneumonia');
  t.equal(extractAnswer('< answer >x</answer><answer>y</answer>'), 'x', 'the first answer block');
  t.equal(extractAnswer('no tags at all.'), 'no tags at all', 'whole response without an answer block');
  t.equal(extractAnswer('<answer>unterminated'), '<answer>unterminated', 'an unclosed block is not an answer block');
  t.same(parseGroundTruth('<X_RAY> Right lower lobe pneumonia'), { tag: '<X_RAY>', answer: 'Right lower lobe pneumonia' });
  t.same(parseGroundTruth('< MRI_SCAN >glioma'), { tag: '<MRI_SCAN>', answer: 'glioma' });
  t.same(parseGroundTruth('plain answer'), { tag: '', answer: 'plain answer' });
  t.same(parseGroundTruth(''), { tag: '', answer: '' });
});

t.test('invalid answers', async (t) => {
  for (const [a, why] of [['', /empty/], ['x', /one-character/], ['é', /one-character/], ['A __ B', /__/], ['Answer: B', /':'/], ['pneumonia?', /'\?'/]] as const)
    t.match(invalidAnswerReason(a), why, JSON.stringify(a));
  for (const a of ['no', '肺炎', 'B12 deficiency', 'x'.repeat(5000)]) t.equal(invalidAnswerReason(a), null, `valid: ${a.slice(0, 12)}`);
});

t.test('format', async (t) => {
  const ok = ['<X_RAY><thinking>r</thinking><answer>a</answer>', '<thinking>r</thinking>\n\n<answer>a</answer>', 'prefix < thinking >r</ thinking > < answer >a</ answer >', '<thinking></thinking><answer></answer>', '<thinking>多</thinking><answer>😀</answer>  '];
  for (const r of ok) t.equal(formatScore(r), 1, JSON.stringify(r));
  const bad = [
    '',
    '<answer>a</answer>',
    '<thinking>r</thinking>',
    '<thinking>r</thinking>text<answer>a</answer>',
    '<thinking>r</thinking><answer>a</answer> trailing',
    '<thinking>r</thinking><answer>a</answer><answer>b</answer>',
    '<thinking>r<thinking>s</thinking></thinking><answer>a</answer>',
    '<thinking>r</thinking><answer>a<answer>b</answer>',
    '<answer>a</answer><thinking>r</thinking>',
  ];
  for (const r of bad) t.equal(formatScore(r), 0, JSON.stringify(r));
  t.equal(formatScore('<think>r</think><final>a</final>', { think: 'think', answer: 'final' }), 1, 'configurable tags');
});

t.test('modality', async (t) => {
  t.equal(modalityScore('<X_RAY><thinking>r</thinking>', '<X_RAY>'), 1);
  t.equal(modalityScore(' < x_ray > <thinking>r</thinking>', '<X_RAY>'), 1, 'case and spaces');
  t.equal(modalityScore('<CT_SCAN><thinking>r</thinking>', '<X_RAY>'), 0);
  t.equal(modalityScore('<X_RAY> extra <thinking>r</thinking>', '<X_RAY>'), 0, 'anything else before thinking');
  t.equal(modalityScore('<X_RAY>', '<X_RAY>'), 0, 'no thinking block');
  t.equal(modalityScore('<thinking>r</thinking>', ''), 0, 'ground truth without a tag');
});
