// Whether a Jinja template reads a variable, from its syntax tree: a misspelt variable renders as
// nothing (no error), so a prompt or target template that never reads its input is caught here,
// before a run trains on empty text. Rendering it twice with different values and comparing would
// also refuse templates that read the variable only in a condition, or fail on probe values.
import type { Template } from '@huggingface/jinja';

export function templateUses(template: Template, name: string): boolean {
  const seen = new Set<unknown>();
  const visit = (node: unknown): boolean => {
    if (typeof node !== 'object' || node === null || seen.has(node)) return false;
    seen.add(node);
    const n = node as { type?: unknown; value?: unknown };
    if (n.type === 'Identifier' && n.value === name) return true;
    return Object.values(node).some(visit);
  };
  return visit(template.parsed);
}
