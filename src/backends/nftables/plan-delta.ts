// A partial sync's view of a patched table (render-patch.ts): the part of the
// table before and after the patch that the patch touched, as two small tables
// that plan.ts compares as it compares whole ones. Both hold every set and map
// (their definitions, and only the touched elements), so that what the plan
// checks about the kernel's maps still sees them; chains only those touched. Pure.
import type { NftTableDelta } from './render-patch.js';
import { emptyTable, type NftElement, type NftSet, type NftTable } from './table.js';

export function touchedTables(table: NftTable, delta: NftTableDelta): { before: NftTable; after: NftTable } {
  const before = emptyTable(table.family, table.name, table.comment);
  const after = emptyTable(table.family, table.name, table.comment);
  for (const [name, set] of table.sets) {
    const was = new Map<string, NftElement>();
    const is = new Map<string, NftElement>();
    for (const [key, e] of delta.elements.get(name) ?? []) {
      if (e) was.set(key, e);
      const now = set.elements.get(key);
      if (now) is.set(key, now);
    }
    const definition: Omit<NftSet, 'elements'> = { ...set };
    before.sets.set(name, { ...definition, elements: was });
    after.sets.set(name, { ...definition, elements: is });
  }
  for (const [name, chain] of delta.chains) {
    if (chain) before.chains.set(name, chain);
    const now = table.chains.get(name);
    if (now) after.chains.set(name, now);
  }
  return { before, after };
}
