// The chat template a Qwen3-VL directory gets when no template that reads images came along (the
// random models of `medix create-model --preset tiny-vl|small-vl` take Qwen3's text tokenizer files):
// medix's own, in Qwen3's chat format, each image part written as
// <|vision_start|><|image_pad|><|vision_end|> where it stands in the message, as Qwen3-VL's template
// places them, and enable_thinking = false closing an empty think block as Qwen3's does.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { templateReadsImages } from '../../tokenizer/chat-template.js';

export const QWEN3_VL_CHAT_TEMPLATE = `{%- for message in messages -%}
    {{- '<|im_start|>' + message.role + '\\n' -}}
    {%- if message.content is string -%}
        {{- message.content -}}
    {%- else -%}
        {%- for part in message.content -%}
            {%- if part.type == 'image' or part.type == 'image_url' -%}
                {{- '<|vision_start|><|image_pad|><|vision_end|>' -}}
            {%- elif part.type == 'text' -%}
                {{- part.text -}}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{- '<|im_end|>\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\\n' -}}
    {%- if enable_thinking is defined and enable_thinking is false -%}
        {{- '<think>\\n\\n</think>\\n\\n' -}}
    {%- endif -%}
{%- endif -%}
`;

/** Whether the chat template of directory `dir` (chat_template.jinja, else tokenizer_config.json's) reads images. */
export function dirTemplateReadsImages(dir: string): boolean {
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return templateReadsImages(readFileSync(jinja, 'utf8'));
  const config = join(dir, 'tokenizer_config.json');
  if (!existsSync(config)) return false;
  const template: unknown = (JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>).chat_template;
  return template !== undefined && template !== null && templateReadsImages(JSON.stringify(template));
}
