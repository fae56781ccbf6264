// The method's text rules, pinned with edge cases: tag squeezing, answer extraction, ground truth,
// invalid answers, format (incl. nested/repeated blocks), modality.
import t from 'tap';
import {
  extractAnswer,
  invalidAnswerReason,
  normalizeAnswer,
  parseGroundTruth,
  squeezeTags,
  untaggedGroundTruthReason,
} from '../../src/reward/normalize.js';
import { formatScore, modalityScore } from '../../src/reward/rules.js';

t.test('squeezing, extraction, ground truth', async (t) => {
  t.equal(squeezeTags('< answer > x </ answer >'), '<answer>x</answer>');
  t.equal(extractAnswer('<thinking>a</thinking><answer> Lobar pneumonia. </answer>'), 'Lobar pneumonia');
  t.equal(extractAnswer('< answer >x</answer><answer>y</answer>'), 'x', 'the first answer block');
  t.equal(extractAnswer('no tags at all.'), 'no tags at all', 'whole response without an answer block');
  t.equal(extractAnswer('<answer>unterminated'), '<answer>unterminated', 'an unclosed block is not an answer block');
  t.same(parseGroundTruth('<X_RAY> Right lower lobe pneumonia'), {
    tag: '<X_RAY>',
    answer: 'Right lower lobe pneumonia',
  });
  t.same(parseGroundTruth('< MRI_SCAN >glioma'), { tag: '<MRI_SCAN>', answer: 'glioma' });
  t.same(parseGroundTruth('plain answer'), { tag: '', answer: 'plain answer' });
  t.same(parseGroundTruth(''), { tag: '', answer: '' });
});

t.test("normalisation is the reference's s.strip().strip('.'), on prediction and ground truth alike", async (t) => {
  const cases: [string, string][] = [
    ['Aspirin...', 'Aspirin'],
    ['Aspirin.', 'Aspirin'],
    ['3.5 cm', '3.5 cm'],
    ['  3.5 cm.  ', '3.5 cm'],
    ['...mass', 'mass'],
    ['.5 mg', '5 mg'],
    ['Aspirin .', 'Aspirin '],
    ['U.S.A.', 'U.S.A'],
    ['Lobar Pneumonia', 'Lobar Pneumonia'],
    ['...', ''],
  ];
  for (const [raw, want] of cases) t.equal(normalizeAnswer(raw), want, JSON.stringify(raw));
  t.equal(
    extractAnswer('<answer>Aspirin...</answer>'),
    parseGroundTruth('<OTHER> Aspirin.').answer,
    '"Aspirin..." and "Aspirin." meet',
  );
  t.equal(parseGroundTruth('<X_RAY> 3.5 cm nodule.').answer, '3.5 cm nodule', 'the ground truth is normalised too');
  t.equal(
    untaggedGroundTruthReason(parseGroundTruth('lobar pneumonia')),
    'ground truth has no <TAG> prefix (expected "<MODALITY> answer")',
  );
  t.equal(untaggedGroundTruthReason(parseGroundTruth('<X_RAY> lobar pneumonia')), null);
});

t.test('invalid answers', async (t) => {
  for (const [a, why] of [
    ['', /empty/],
    ['x', /one-character/],
    ['é', /one-character/],
    ['A __ B', /__/],
    ['Answer: B', /':'/],
    ['pneumonia?', /'\?'/],
  ] as const)
    t.match(invalidAnswerReason(a), why, JSON.stringify(a));
  for (const a of ['no', '肺炎', 'B12 deficiency', 'x'.repeat(5000)])
    t.equal(invalidAnswerReason(a), null, `valid: ${a.slice(0, 12)}`);
});

t.test('format', async (t) => {
  const ok = [
    '<X_RAY><thinking>r</thinking><answer>a</answer>',
    '<thinking>r</thinking>\n\n<answer>a</answer>',
    'prefix < thinking >r</ thinking > < answer >a</ answer >',
    '<thinking></thinking><answer></answer>',
    '<thinking>多</thinking><answer>😀</answer>  ',
  ];
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

t.test('more extraction edge cases', async (t) => {
  t.equal(extractAnswer(''), '', 'empty response');
  t.equal(extractAnswer('<answer></answer>'), '', 'empty block');
  t.equal(
    extractAnswer('reasoning first. <answer>Glioma.</answer> and after.'),
    'Glioma',
    'text outside the block is ignored',
  );
  t.equal(
    extractAnswer('<answer>a<answer>b</answer>'),
    'a<answer>b',
    'an inner opening tag stays in the (format-failing) answer',
  );
  t.equal(
    extractAnswer('<answer>\n  Right\tlower lobe  \n</answer>'),
    'Right\tlower lobe',
    'trimmed, inner whitespace kept',
  );
  t.equal(
    extractAnswer('<answer>3.5 cm mass...</answer>'),
    '3.5 cm mass',
    'only leading and trailing periods go: the inner one stays',
  );
  t.equal(
    extractAnswer('<ANSWER>x y</ANSWER>'),
    '<ANSWER>x y</ANSWER>',
    'tags are case-sensitive: no block, the whole response',
  );
  t.equal(extractAnswer('<answer>肺炎。</answer>'), '肺炎。', 'unicode kept; only ASCII periods removed');
  t.equal(extractAnswer('<final>kept</final>', 'final'), 'kept', 'configurable answer tag');
  t.equal(extractAnswer('<answer>  é  </answer>'), 'é');
  const long = 'pneumonia '.repeat(10_000).trim();
  t.equal(extractAnswer(`<thinking>r</thinking><answer>${long}</answer>`), long, 'very long answers are kept whole');
  t.equal(
    squeezeTags('a < b and c > d / e'),
    'a<b and c>d/e',
    'squeezing also applies outside tags (the method does the same)',
  );
});

t.test('more ground-truth edge cases', async (t) => {
  t.same(parseGroundTruth('  <X_RAY>   lobar pneumonia  '), { tag: '<X_RAY>', answer: 'lobar pneumonia' });
  t.same(parseGroundTruth('<X_RAY> a > b'), { tag: '<X_RAY>', answer: 'a > b' }, 'only the first > ends the tag');
  t.same(parseGroundTruth('<X_RAY>'), { tag: '<X_RAY>', answer: '' });
  t.same(parseGroundTruth('no tag > here'), { tag: '', answer: 'no tag > here' }, 'a > without a leading tag is text');
  t.same(parseGroundTruth('<unclosed tag'), { tag: '', answer: '<unclosed tag' });
});

t.test('more format and modality edge cases', async (t) => {
  t.equal(formatScore('<X_RAY>\n<thinking>r</thinking>\n<answer>a</answer>\n'), 1, 'newlines between and after blocks');
  t.equal(formatScore('<thinking>r</thinking><answer>a</answer>'.repeat(2)), 0, 'repeated pairs');
  t.equal(formatScore('<thinking>r</thinking><answer>a</answer></answer>'), 0, 'stray closing tag');
  t.equal(formatScore(`<thinking>r</thinking><answer>${'x'.repeat(100_000)}</answer>`), 1, 'very long answer');
  t.equal(
    formatScore('<thinking>r</thinking><answer>a</answer>', { think: 'think', answer: 'answer' }),
    0,
    'other tag names configured',
  );
  t.equal(
    modalityScore('<X_RAY><thinking>a</thinking><thinking>b</thinking>', '<X_RAY>'),
    1,
    'the first thinking block counts',
  );
  t.equal(modalityScore('<thinking>r</thinking>', '<X_RAY>'), 0, 'no tag given');
  t.equal(modalityScore('<X_RAY><X_RAY><thinking>r</thinking>', '<X_RAY>'), 0, 'tag repeated');
  t.equal(
    modalityScore('<X_RAY><think>r</think>', '<X_RAY>', { think: 'think', answer: 'answer' }),
    1,
    'configurable thinking tag',
  );
});
