// The benchmark task declarations (eval/tasks.yaml, or a user's own file): parsed and checked with
// zod so that a typo names the entry and the field instead of surfacing later as a wrong score.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { z } from 'zod';

export class TaskFileError extends Error {}

const columnName = z.string().min(1);

const ChoicesSpec = z.union([
  z.object({ column: columnName }).strict(),
  z.object({ columns: z.array(columnName).min(2) }).strict(),
  z.object({ values: z.array(z.string().min(1)).min(2) }).strict(),
]);

const AnswerSpec = z.union([
  z.object({ column: columnName, as: z.enum(['text', 'index', 'letter']).default('text') }).strict(),
  // Several columns' text joined by newlines (PubMedQA: the decision, then the long answer).
  z.object({ columns: z.array(columnName).min(1) }).strict(),
]);

const taskName = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only (it names files)');

const TaskSpecSchema = z
  .object({
    name: taskName,
    aliases: z.array(taskName).optional(),
    group: z.enum(['llm', 'vlm']),
    scoring: z.enum(['binary', 'rubric']),
    file: z.string().min(1).optional(),
    id: columnName.optional(),
    prompt: z.string().min(1).default('{question}'),
    choices: ChoicesSpec.optional(),
    answer: AnswerSpec,
    image: columnName.optional(),
    image_dir: z.string().min(1).optional(),
    where: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.scoring === 'rubric' && t.choices)
      ctx.addIssue({ code: 'custom', path: ['choices'], message: 'rubric tasks are open-ended: no choices' });
    if (!t.choices && 'as' in t.answer && t.answer.as !== 'text')
      ctx.addIssue({ code: 'custom', path: ['answer', 'as'], message: `'${t.answer.as}' needs choices` });
    if (t.image_dir && !t.image) ctx.addIssue({ code: 'custom', path: ['image_dir'], message: 'needs `image`' });
  });

const TaskFileSchema = z.object({ tasks: z.array(TaskSpecSchema).min(1) }).strict();

export type TaskSpec = z.infer<typeof TaskSpecSchema>;
export type ChoicesSpec = z.infer<typeof ChoicesSpec>;

/** The top-level columns a task reads from every row of its file (dotted paths: their first part). */
export function columnsRead(t: TaskSpec): string[] {
  const cols = [...t.prompt.matchAll(/\{([^{}]+)\}/g)].map((m) => m[1]);
  if (t.id) cols.push(t.id);
  if (t.choices && 'column' in t.choices) cols.push(t.choices.column);
  if (t.choices && 'columns' in t.choices) cols.push(...t.choices.columns);
  if ('column' in t.answer) cols.push(t.answer.column);
  else cols.push(...t.answer.columns);
  if (t.image) cols.push(t.image);
  cols.push(...Object.keys(t.where ?? {}));
  return [...new Set(cols)];
}

/** The task file shipped with medix (the 17 benchmarks); found from src/eval and dist/eval alike. */
export const DEFAULT_TASKS_FILE = fileURLToPath(new URL('../../eval/tasks.yaml', import.meta.url));

function describeIssue(issue: z.core.$ZodIssue, tasks: unknown): string {
  const [, index, ...rest] = issue.path;
  const entry =
    Array.isArray(tasks) && typeof index === 'number' ? (tasks[index] as { name?: unknown } | undefined) : undefined;
  const where =
    typeof index === 'number'
      ? `tasks[${index}]${typeof entry?.name === 'string' ? ` (${entry.name})` : ''}${rest.length ? `.${rest.join('.')}` : ''}`
      : issue.path.join('.') || '(top level)';
  return `${where}: ${issue.message}`;
}

export function parseTasks(text: string, file: string): TaskSpec[] {
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new TaskFileError(`${file}: not valid YAML: ${(e as Error).message}`);
  }
  const parsed = TaskFileSchema.safeParse(doc);
  if (!parsed.success) {
    const tasks = (doc as { tasks?: unknown } | null)?.tasks;
    throw new TaskFileError(`${file}: ${parsed.error.issues.map((i) => describeIssue(i, tasks)).join('; ')}`);
  }
  const seen = new Set<string>();
  for (const t of parsed.data.tasks)
    for (const n of [t.name, ...(t.aliases ?? [])]) {
      if (seen.has(n)) throw new TaskFileError(`${file}: task name '${n}' is declared twice`);
      seen.add(n);
    }
  return parsed.data.tasks;
}

export function loadTasks(file: string = DEFAULT_TASKS_FILE): TaskSpec[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TaskFileError(
      `${file}: cannot read the task file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  return parseTasks(text, file);
}

/** `all`, `llm`, `vlm` or task names or aliases (mixable: `llm slake_vqa`); order follows the task file. */
export function selectTasks(tasks: TaskSpec[], selection: string[]): TaskSpec[] {
  const wanted = new Set<string>();
  for (const s of selection.flatMap((x) => x.split(',')).filter((x) => x.length > 0)) {
    if (s === 'all') tasks.forEach((t) => wanted.add(t.name));
    else if (s === 'llm' || s === 'vlm') tasks.filter((t) => t.group === s).forEach((t) => wanted.add(t.name));
    else {
      const task = tasks.find((t) => t.name === s || t.aliases?.includes(s));
      if (task) wanted.add(task.name);
      else throw new TaskFileError(`unknown task '${s}'; known: all, llm, vlm, ${tasks.map((t) => t.name).join(', ')}`);
    }
  }
  if (wanted.size === 0) throw new TaskFileError('no tasks selected');
  return tasks.filter((t) => wanted.has(t.name));
}
