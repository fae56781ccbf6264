// Prompts from questions: data.format_prompt (Jinja) applied before the model's chat template,
// images placed at <image> or before the text, image pads expanded to each image's visual tokens, overlong rows
// filtered and counted by the loader, and rows the template cannot take reported as bad rows; a template (or
// sft.response_template) that never uses its question (answer) is refused, naming where it came from.
import t, { type Test } from 'tap';
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { defaultTokenizerDir, loadTokenizer } from '../../src/tokenizer/index.js';
import { formatPromptOf, loadRlDataset, PromptError, PromptFormatter } from '../../src/data/index.js';
import { loadTrainingConfig } from '../../src/config/index.js';
import { sftTarget } from '../../src/train/sft-target.js';

const resize = { factor: 32, minPixels: 32 * 32, maxPixels: 1024 * 1024 };
const tok = await loadTokenizer();

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'medix-prompt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The Qwen3 tokenizer with a Qwen3-VL-style chat template (image parts become vision markers). */
async function vlTokenizer(t: Test) {
  const dir = tempDir(t);
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    symlinkSync(join(defaultTokenizerDir(), f), join(dir, f));
  copyFileSync(
    join(import.meta.dirname, '..', 'fixtures', 'tokenizer', 'vl_style_template.jinja'),
    join(dir, 'chat_template.jinja'),
  );
  return loadTokenizer(dir);
}

t.test('format_prompt renders the question into the user turn, then the chat template wraps it', async (t) => {
  const f = new PromptFormatter(tok, {
    formatPrompt: 'Question: {{ content | trim }}\nReply with a modality tag first.',
    systemPrompt: 'You are a radiologist.',
    resize,
  });
  const p = f.encode('  Which lobe is consolidated? ', []);
  t.same(p.messages, [
    { role: 'system', content: 'You are a radiologist.' },
    { role: 'user', content: 'Question: Which lobe is consolidated?\nReply with a modality tag first.' },
  ]);
  t.match(
    p.text,
    /^<\|im_start\|>system\nYou are a radiologist\.<\|im_end\|>\n<\|im_start\|>user\nQuestion: Which lobe is consolidated\?\nReply with a modality tag first\.<\|im_end\|>\n<\|im_start\|>assistant\n/,
  );
  t.same(p.ids, tok.encode(p.text, { addSpecialTokens: false }), 'ids are the rendered text, special tokens as text');
  t.equal(tok.decode(p.ids), p.text);
  t.equal(p.length, p.ids.length, 'no images: the length is the text tokens');
  t.equal(new PromptFormatter(tok, { resize }).userText('as it is'), 'as it is', 'no template: the question unchanged');
  t.throws(
    () => new PromptFormatter(tok, { formatPrompt: '{% if %}', resize }),
    /data\.format_prompt: not a valid Jinja template/,
  );
  // A misspelt variable renders as nothing: every prompt would lose its question.
  t.throws(
    () =>
      new PromptFormatter(tok, {
        formatPrompt: 'Q: {{ contnt }}',
        formatPromptSource: 'data.format_prompt_path x.jinja',
        resize,
      }),
    /data\.format_prompt_path x\.jinja: never uses \{\{ content \}\}/,
  );
  t.equal(
    new PromptFormatter(tok, { formatPrompt: '{{ content | upper }}', resize }).userText('q'),
    'Q',
    'a filtered {{ content }} counts as used',
  );
  // Read only in a condition, or through a method that needs real questions: used, and no probe render at start.
  t.ok(
    new PromptFormatter(tok, {
      formatPrompt: '{% if content|length > 3 %}{{ content }}{% else %}short{% endif %}',
      resize,
    }),
  );
  t.ok(new PromptFormatter(tok, { formatPrompt: "{{ content.split('Question:')[1] | trim }}", resize }));
});

t.test('sft.response_template: refused when invalid or when it never uses the answer', async (t) => {
  t.throws(() => sftTarget(tok, '{% if %}'), /sft\.response_template: not a valid Jinja template/);
  t.throws(
    () => sftTarget(tok, '{{ tag }}<answer>{{ answr }}</answer>'),
    /sft\.response_template: never uses \{\{ answer \}\}/,
  );
  t.ok(sftTarget(tok, '<answer>{{ answer }}</answer>')('<X_RAY> a').length > 1, 'the tag is optional');
});

t.test('images go where the text says <image>, else before the text; visual tokens count in the length', async (t) => {
  const vl = await vlTokenizer(t);
  const f = new PromptFormatter(vl, { resize });
  t.same(f.messages('Compare <image> with <image>.', 2)[0].content, [
    { type: 'text', text: 'Compare ' },
    { type: 'image' },
    { type: 'text', text: ' with ' },
    { type: 'image' },
    { type: 'text', text: '.' },
  ]);
  t.same(f.messages('What is shown?', 1)[0].content, [{ type: 'image' }, { type: 'text', text: 'What is shown?' }]);
  t.same(
    f.messages('One <image> only', 2)[0].content,
    [{ type: 'text', text: 'One ' }, { type: 'image' }, { type: 'image' }, { type: 'text', text: ' only' }],
    'a single placeholder takes every image',
  );
  t.throws(() => f.messages('Two <image> and <image>', 3), PromptError, 'several placeholders must match the images');
  // 100 x 50 resizes to 96 x 64 (see images.test.ts): 3 x 2 cells of 32 x 32 = 6 visual tokens; 64 x 64: 4.
  const p = f.encode('What is shown?', [
    { width: 100, height: 50 },
    { width: 64, height: 64 },
  ]);
  t.match(p.text, /<\|vision_start\|><\|image_pad\|><\|vision_end\|>/);
  // One pad per image in the text, one per visual token in the ids (as transformers' processor expands them).
  const pad = vl.encode('<|image_pad|>', { addSpecialTokens: false })[0];
  const runLength = (i: number) => p.ids.slice(i).findIndex((x) => x !== pad);
  const runs = p.ids.flatMap((id, i) => (id === pad && p.ids[i - 1] !== pad ? [runLength(i)] : []));
  t.same(runs, [6, 4], "the first image's pad repeated 6 times, the second's 4");
  const text = (ids: number[]) => ids.filter((id) => id !== pad);
  t.same(text(p.ids), text(vl.encode(p.text, { addSpecialTokens: false })), 'the rest is the text');
  t.equal(p.length, p.ids.length);
});

t.test(
  'the loader drops prompts over max_prompt_length and counts them; image rows a text-only template refuses are bad rows',
  async (t) => {
    const dir = tempDir(t);
    writeFileSync(
      join(dir, 'x.png'),
      await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } })
        .png()
        .toBuffer(),
    );
    const short = 'Which vitamin deficiency causes scurvy?';
    const long = `${short} ${'Describe every finding in detail. '.repeat(40)}`;
    const rows = [
      { problem: short, solution: '<OTHER> Vitamin C' },
      { problem: long, solution: '<OTHER> Vitamin C' },
      { problem: short, solution: '<X_RAY> none', images: ['x.png'] },
    ];
    writeFileSync(join(dir, 'train.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n'));
    const formatter = new PromptFormatter(tok, { systemPrompt: 'Answer briefly.', resize });
    // The limit: exactly the short prompt's length as the tokenizer counts it, so "<=" is what keeps it.
    const shortLength = tok.encode(
      tok.applyChatTemplate(
        [
          { role: 'system', content: 'Answer briefly.' },
          { role: 'user', content: short },
        ],
        { enableThinking: false },
      ),
      { addSpecialTokens: false },
    ).length;
    const warnings: string[] = [];
    const { samples, stats } = await loadRlDataset(join(dir, 'train.jsonl'), {
      promptKey: 'problem',
      answerKey: 'solution',
      imageKey: 'images',
      onBadRow: 'skip',
      resize,
      formatter,
      maxPromptLength: shortLength,
      warn: (m) => warnings.push(m),
    });
    t.same(
      samples.map((s) => [s.where.row, s.promptLength]),
      [[1, shortLength]],
    );
    t.same(stats, { rows: 3, kept: 1, badRows: 1, overlongPrompts: 1 });
    t.match(warnings, [/train\.jsonl:3: .*has no image support/]);

    const vl = await loadRlDataset(join(dir, 'train.jsonl'), {
      promptKey: 'problem',
      answerKey: 'solution',
      imageKey: 'images',
      onBadRow: 'stop',
      resize,
      formatter: new PromptFormatter(await vlTokenizer(t), { systemPrompt: 'Answer briefly.', resize }),
    });
    t.equal(vl.samples.length, 3, 'with a vision template and no limit every row stays');
    t.ok(vl.samples[1].promptLength! > shortLength + 200, 'the long question is long');
  },
);

t.test(
  "the recipes' and the quickstart's format prompt is the reference's in shape; one <image> serves 0, 1 or 3 images",
  async (t) => {
    const examples = join(import.meta.dirname, '../../examples');
    const tags = [
      'X_RAY',
      'MICROSCOPY',
      'CLINICAL_PHOTOGRAPHY',
      'CT_SCAN',
      'GRAPHICS',
      'ANGIOGRAPHY',
      'PET_SCAN',
      'ULTRASOUND',
      'MRI_SCAN',
      'FUNDUS_PHOTOGRAPHY',
      'OCT_SCAN',
      'ENDOSCOPY',
      'MAMMOGRAPHY',
      'FLUOROSCOPY',
      'OTHER',
      'SPECT',
    ];
    const recipes = [
      'quickstart.yaml',
      'medix_r1_2b_dapo.yaml',
      'medix_r1_8b_dapo.yaml',
      'medix_r1_8b_grpo.yaml',
      'medix_r1_30b_a3b_dapo.yaml',
    ];
    const prompts = new Set(recipes.map((y) => formatPromptOf(loadTrainingConfig(join(examples, y)).data)));
    t.equal(prompts.size, 1, 'one format prompt for all of them');
    const template = [...prompts][0]!;
    const f = new PromptFormatter(tok, { formatPrompt: template, resize });
    const text = f.userText('  Which lobe is consolidated?  ');
    const question = text.indexOf('\nQuestion:\n');
    t.ok(question > 0, 'the instruction comes first, then "Question:" on its own line');
    const instruction = text.slice(0, question);
    for (const tag of tags) t.ok(instruction.includes(`<${tag}>`), `the instruction lists <${tag}>`);
    t.equal((instruction.match(/<[A-Z_]+>/g) ?? []).length, 16, 'and no other tag');
    t.match(
      instruction,
      /<thinking>.*<\/thinking>[\s\S]*<answer>.*<\/answer>/,
      'then the thinking and answer blocks, in that order',
    );
    t.ok(
      text.endsWith('\nQuestion:\n<image>Which lobe is consolidated?'),
      'then the image placeholder and the trimmed question',
    );

    const vl = new PromptFormatter(await vlTokenizer(t), { formatPrompt: template, resize });
    const textOnly = vl.messages('Which lobe?', 0)[0].content;
    t.equal(
      textOnly,
      text.replace('<image>', '').replace('Which lobe is consolidated?', 'Which lobe?'),
      'a text-only row: the placeholder is dropped, plain text',
    );
    const parts = (n: number) => vl.messages('Which lobe?', n)[0].content as { type: string; text?: string }[];
    t.same(
      parts(1).map((p) => p.type),
      ['text', 'image', 'text'],
    );
    t.same(
      parts(3).map((p) => p.type),
      ['text', 'image', 'image', 'image', 'text'],
      'three images all where the one placeholder stands',
    );
    t.equal(parts(3).at(-1)!.text, 'Which lobe?');
    t.throws(
      () => vl.messages('<image> and <image>', 2),
      /the prompt has 3 <image> placeholders but the row has 2 images/,
      'several placeholders: one per image',
    );
  },
);
