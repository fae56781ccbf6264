// What the candidate model is shown: the reference's multiple-choice layout (question, a blank
// line, "Choices:", one lettered option per line) and the chat message carrying the prompt and its images as
// image_url content parts, as OpenAI-compatible servers take them.
import type { ChatContentPart, ChatMessage } from '../tokenizer/types.js';

export function optionLetter(index: number): string {
  return String.fromCharCode(65 + index);
}

export function formatMultipleChoice(question: string, choices: string[]): string {
  return `${question.trimEnd()}\n\nChoices:\n${choices.map((c, i) => `${optionLetter(i)}. ${c}`).join('\n')}`;
}

/** The candidate's conversation: an optional system prompt, then the images followed by the text. */
export function candidateMessages(prompt: string, imageUrls: string[], systemPrompt?: string): ChatMessage[] {
  const messages: ChatMessage[] = systemPrompt ? [{ role: 'system', content: systemPrompt }] : [];
  if (imageUrls.length === 0) messages.push({ role: 'user', content: prompt });
  else {
    const parts: ChatContentPart[] = imageUrls.map((url) => ({ type: 'image_url', image_url: { url } }));
    parts.push({ type: 'text', text: prompt });
    messages.push({ role: 'user', content: parts });
  }
  return messages;
}
