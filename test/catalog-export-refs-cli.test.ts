import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditRepository } from '../src/audit/audit-repository.js';
import { RecordingRepository } from '../src/catalog/recording-repository.js';
import { type CommandOutput, exportCommand, importCommand } from '../src/cli/catalog-commands.js';
import { openTestCatalog, usableCatalogs } from './support/catalogs.js';

const quiet = (): CommandOutput => ({ out: () => {}, err: () => {} });
const dir = mkdtempSync(join(tmpdir(), 'custodian-export-refs-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * `custodian export` of a whole catalog, imported into an empty one: the recordings are found by
 * the Genesys externalTag and SIP Call-ID the first catalog had (the keys the self-heal's
 * write-back and the sync store, which no column holds), and the codec is filed canonical.
 */
describe.each(await usableCatalogs())('custodian export → import on %s', (kind) => {
  it('keeps external_tag and sip_call_id of every tenant', async () => {
    const [a, b] = [await openTestCatalog(kind), await openTestCatalog(kind)];
    try {
      const deps = (db: typeof a.db) => ({ recordings: new RecordingRepository(db), auditRepo: new AuditRepository(db, a.dialect) });
      const src = join(dir, `${kind}-in.jsonl`);
      const rows = [
        { tenant_id: 'acme', call_id: '2023-10-27T14:30:00Z-8923', source_system: 'genesys_cloud', recording_id: 'rec-8923', conversation_id: 'conv-8923', external_tag: 'avaya_8923', sip_call_id: 'abc@10.0.0.1' },
        { tenant_id: 'globex', source_system: 'cisco_mediasense', legacy_archive_id: 'ms-1', locator: 'ms_1.g729', codec: 'G.729', sip_call_id: 'ms-sip@cucm' },
      ];
      writeFileSync(src, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
      expect(await importCommand(deps(a.db), src, new Set(['acme', 'globex']), quiet())).toBe(0);
      const out = join(dir, `${kind}-export.jsonl`);
      expect(await exportCommand(deps(a.db), { tenant: null, out }, quiet())).toBe(0);
      expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(2);
      expect(await importCommand(deps(b.db), out, new Set(['acme', 'globex']), quiet())).toBe(0);
      const repoB = new RecordingRepository(b.db);
      for (const [tenant, ref, id] of [
        ['acme', 'avaya_8923', 'rec-8923'],
        ['acme', 'abc@10.0.0.1', 'rec-8923'],
        ['globex', 'ms-sip@cucm', 'ms-1'],
      ] as const) {
        expect((await repoB.findByRef(tenant, ref))?.id, ref).toBe((await repoB.findByRef(tenant, id))!.id);
      }
      expect((await repoB.findByRef('globex', 'ms-1'))!.copies[0]!.codec).toBe('g729');
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });
});
