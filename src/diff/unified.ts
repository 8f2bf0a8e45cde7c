// A unified diff of two texts, coloured for a terminal.
import { createTwoFilesPatch } from 'diff';

const colors = { add: '\x1b[32m', del: '\x1b[31m', hunk: '\x1b[36m', head: '\x1b[1m', reset: '\x1b[0m' };

export function unifiedDiff(
  oldName: string,
  oldText: string,
  newName: string,
  newText: string,
  color: boolean,
): string {
  if (oldText === newText) return '';
  const patch = createTwoFilesPatch(oldName, newName, oldText, newText, '', '', { context: 3 });
  const lines = patch.split('\n');
  // Drop the "Index:/=====" preamble that jsdiff adds; keep the ---/+++ header.
  const start = lines.findIndex((l) => l.startsWith('--- '));
  const body = lines
    .slice(Math.max(start, 0))
    .filter((l, i, a) => !(i === a.length - 1 && l === ''))
    .map((l) => (l.startsWith('--- ') || l.startsWith('+++ ') ? l.trimEnd() : l));
  if (!color) return `${body.join('\n')}\n`;
  return `${body
    .map((l) => {
      if (l.startsWith('+++') || l.startsWith('---')) return colors.head + l + colors.reset;
      if (l.startsWith('@@')) return colors.hunk + l + colors.reset;
      if (l.startsWith('+')) return colors.add + l + colors.reset;
      if (l.startsWith('-')) return colors.del + l + colors.reset;
      return l;
    })
    .join('\n')}\n`;
}
