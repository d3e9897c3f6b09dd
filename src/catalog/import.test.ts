import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { CATALOGS, catalogForBlock, catalogsAvailable, openTestCatalog } from '../../test/support/catalogs.js';
import { importFile } from './import.js';
import { toCatalogRecords } from './record.js';
import { RecordingRepository } from './recording-repository.js';

const AVAILABLE = await catalogsAvailable();

const dir = mkdtempSync(join(tmpdir(), 'custodian-import-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileSeq = 0;
function file(ext: 'jsonl' | 'csv', text: string): string {
  const p = join(dir, `f${++fileSeq}.${ext}`);
  writeFileSync(p, text);
  return p;
}
let tenantSeq = 0;
const newTenant = () => `i${++tenantSeq}-${Math.random().toString(36).slice(2, 8)}`;

/** The brief's record shape, with tenant and Genesys conversation id (every Genesys read needs it). */
function briefRecords(t: string): Record<string, unknown>[] {
  return [
    {
      tenant_id: t,
      call_id: '2023-10-27T14:30:00Z-8923',
      source_system: 'genesys_cloud',
      recording_id: 'rec_5f3a2b1c9d8e7f6g5h4i3j2k1l',
      legacy_archive_id: null,
      storage_location: 'GENESYS_CLOUD_ARCHIVE',
      retention_expiry: '2025-10-27T14:30:00Z',
      encryption_status: 'AES_256',
      conversation_id: 'conv-8923',
    },
    {
      tenant_id: t,
      call_id: '2023-10-27T14:30:00Z-8923',
      source_system: 'avaya_aura',
      recording_id: null,
      legacy_archive_id: 'avaya_8923',
      storage_location: 'LEGACY_ARCHIVE',
      retention_expiry: '2025-10-27T14:30:00Z',
      encryption_status: 'AES_256',
      customer_ref: 'CUST-8923',
      locator: 'avaya/2023/10/27/avaya_8923.wav',
      codec: 'g729',
      size_bytes: 48044,
      sha256: 'c'.repeat(64),
    },
    { tenant_id: t, call_id: '2024-03-05T09:12:00Z-1001', source_system: 'cisco_mediasense', legacy_archive_id: 'ms_1001', retention_expiry: '2031-03-05', legal_hold: true },
  ];
}
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

describe.each(CATALOGS)('catalog import on %s', (kind) => {
  let repo: RecordingRepository;
  const { test } = catalogForBlock(kind, AVAILABLE, (c) => {
    repo = c.repo;
  });

  test('imports JSONL of the brief record shape, and re-importing it changes nothing', async () => {
    const t = newTenant();
    const path = file('jsonl', jsonl(briefRecords(t)));
    const report = await importFile(repo, path);
    // ms_1001 says legal_hold: true — an imported hold, placed once.
    expect(report).toEqual({ rows: 3, errors: [], written: { inserted: 2, updated: 1, unchanged: 0, holdsPlaced: 1 } });
    expect(await repo.count(t)).toBe(2);
    const r = (await repo.findByRef(t, 'rec_5f3a2b1c9d8e7f6g5h4i3j2k1l'))!;
    expect(r.copies).toHaveLength(2);
    expect(r.customerRef).toBe('CUST-8923');
    expect(r.conversationId).toBe('conv-8923');
    expect(r.copies.find((c) => c.sourceSystem === 'avaya_aura')).toMatchObject({ codec: 'g729', sizeBytes: 48044, sha256: 'c'.repeat(64) });
    const ms = (await repo.findByRef(t, 'ms_1001'))!;
    expect(ms.legalHold).toBe(true);
    expect(ms.retentionExpiry).toBe('2031-03-05T00:00:00.000Z');

    const again = await importFile(repo, path);
    expect(again).toEqual({ rows: 3, errors: [], written: { inserted: 0, updated: 0, unchanged: 3, holdsPlaced: 0 } });
    expect(await repo.count(t)).toBe(2);
  });

  test('a bad line after chunks already written leaves nothing written, and every bad line is reported', async () => {
    // One pass writes as it reads: 4 500 good rows flush two chunks before the first bad line.
    const t = newTenant();
    const good = Array.from({ length: 4500 }, (_, i) => ({ tenant_id: t, call_id: `c-${i}`, source_system: 'avaya_aura', legacy_archive_id: `L-${i}`, customer_ref: `CU-${i}` }));
    const lines = [...good.map((r) => JSON.stringify(r)), '{"tenant_id": "oops"', JSON.stringify({ ...good[0], legacy_archive_id: undefined }), JSON.stringify({ tenant_id: t, source_system: 'avaya_aura', legacy_archive_id: 'L-last' })];
    const report = await importFile(repo, file('jsonl', lines.join('\n') + '\n'));
    expect(report.written).toBeNull();
    expect(report.rows).toBe(4503);
    expect(report.errors.map((e) => e.line)).toEqual([4501, 4502]);
    expect(await repo.count(t)).toBe(0);
    expect(await repo.findByRef(t, 'CU-1')).toBeNull();
  });

  test('skips blank lines (CRLF too) and accepts a byte-order mark', async () => {
    const t = newTenant();
    const [a, b] = briefRecords(t);
    const report = await importFile(repo, file('jsonl', '\ufeff' + JSON.stringify(a) + '\r\n\r\n   \r\n' + JSON.stringify(b) + '\r\n'));
    expect(report.errors).toEqual([]);
    expect(report.rows).toBe(2);
    expect(await repo.count(t)).toBe(1);
  });

  test('imports CSV: header row, empty cells are absent, quoted fields with commas, quotes and newlines', async () => {
    const t = newTenant();
    const csv = [
      'tenant_id,call_id,source_system,recording_id,legacy_archive_id,storage_location,retention_expiry,encryption_status,conversation_id,customer_ref,size_bytes,legal_hold,locator',
      `${t},2023-10-27T14:30:00Z-8923,genesys_cloud,rec_5f3a2b1c9d8e7f6g5h4i3j2k1l,,GENESYS_CLOUD_ARCHIVE,2025-10-27T14:30:00Z,AES_256,conv-8923,,,,`,
      `${t},2023-10-27T14:30:00Z-8923,avaya_aura,,avaya_8923,"VAULT, ROOM ""B""\nSHELF 4",2025-10-27T14:30:00Z,,,"CUST,8923",48044,true,"avaya/a,b.wav"`,
      `${t},,verint,,v_1,,,,,,,false,`,
      '',
    ].join('\n');
    const report = await importFile(repo, file('csv', csv));
    expect(report).toEqual({ rows: 3, errors: [], written: { inserted: 2, updated: 1, unchanged: 0, holdsPlaced: 1 } });
    const r = (await repo.findByRef(t, 'avaya_8923'))!;
    expect(r.customerRef).toBe('CUST,8923');
    expect(r.legalHold).toBe(true);
    // An empty cell is "absent": the genesys row's empty customer_ref did not erase anything, and
    // the avaya row's empty encryption_status left the field null rather than "".
    const avaya = r.copies.find((c) => c.sourceSystem === 'avaya_aura')!;
    expect(avaya).toMatchObject({ storageLocation: 'VAULT, ROOM "B"\nSHELF 4', sizeBytes: 48044, locator: 'avaya/a,b.wav', encryptionStatus: null });
    const v = (await repo.findByRef(t, 'v_1'))!;
    expect(v).toMatchObject({ callId: null, legalHold: false, retentionExpiry: null });
    expect(v.copies[0]).toMatchObject({ state: 'AVAILABLE', storageLocation: null });
    expect((await importFile(repo, file('csv', csv))).written).toEqual({ inserted: 0, updated: 0, unchanged: 3, holdsPlaced: 0 });
  });

  test('reports every bad JSONL row with its 1-based line number and writes nothing', async () => {
    const t = newTenant();
    const ok = (extra: Record<string, unknown> = {}) => JSON.stringify({ tenant_id: t, source_system: 'avaya_aura', legacy_archive_id: `L-${Math.random()}`, ...extra });
    const lines = [
      ok(), // 1
      '{"tenant_id": "' + t + '", "source_system": ', // 2 invalid JSON
      '', // 3 blank
      ok({ colour: 'blue' }), // 4 unknown field
      ok({ size_bytes: '12' }), // 5 wrong type
      ok({ retention_expiry: '2025-02-30T00:00:00Z' }), // 6 bad date
      JSON.stringify({ tenant_id: t, source_system: 'avaya_aura', call_id: 'x' }), // 7 no copy id at all
      JSON.stringify({ tenant_id: t, source_system: 'genesys_cloud', recording_id: 'g-1' }), // 8 genesys without conversation id
      ok({ tenant_id: 'stranger' }), // 9 unknown tenant
      ok({ sha256: 'ABC' }), // 10 bad digest
      '[1,2,3]', // 11 not an object
      ok({ call_id: 'bad\u0000id' }), // 12 control character in an id
      ok(), // 13
    ];
    const report = await importFile(repo, file('jsonl', lines.join('\n')), { tenants: new Set([t]) });
    expect(report.written).toBeNull();
    expect(report.rows).toBe(12);
    expect(report.errors.map((e) => e.line)).toEqual([2, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const msg = (line: number) => report.errors.find((e) => e.line === line)!.message;
    expect(msg(2)).toMatch(/JSON/);
    expect(msg(4)).toMatch(/colour/);
    expect(msg(5)).toMatch(/^size_bytes: /);
    expect(msg(6)).toMatch(/^retention_expiry: /);
    expect(msg(7)).toMatch(/recording_id, legacy_archive_id or locator/);
    expect(msg(8)).toMatch(/^conversation_id: .*genesys_cloud/);
    expect(msg(9)).toMatch(/^tenant_id: unknown tenant "stranger"/);
    expect(msg(10)).toMatch(/^sha256: /);
    expect(msg(12)).toMatch(/^call_id: /);
    expect(await repo.count(t)).toBe(0);
    expect(await repo.count('stranger')).toBe(0);
  });

  test('reports bad CSV rows with the line each row starts on, even after multi-line quoted fields, and writes nothing', async () => {
    const t = newTenant();
    const header = 'tenant_id,source_system,legacy_archive_id,storage_location,size_bytes,retention_expiry';
    for (const eol of ['\n', '\r\n']) {
      const csv = [
        header, // 1
        `${t},avaya_aura,a1,"two${eol}lines",,`, // 2-3
        `${t},avaya_aura,a2,,twelve,`, // 4 wrong type
        '', // 5 blank
        `${t},avaya_aura,a3,"three${eol}line${eol}field",,2025-13-01`, // 6-8 bad date (reported where the row starts)
        `${t},avaya_aura,a4,,`, // 9 too few columns
        `${t},avaya_aura,a5,,1,,extra`, // 10 too many columns
        `${t},avaya_aura,,,,`, // 11 no copy id
        `${t},avaya_aura,a6,ok,1,2030-01-01`, // 12
      ].join(eol);
      const report = await importFile(repo, file('csv', csv));
      expect(report.written, `eol ${JSON.stringify(eol)}`).toBeNull();
      expect(report.errors.map((e) => e.line), `eol ${JSON.stringify(eol)}`).toEqual([4, 6, 9, 10, 11]);
      expect(report.errors[0]!.message).toMatch(/^size_bytes: /);
      expect(report.errors[1]!.message).toMatch(/^retention_expiry: /);
      expect(report.errors[2]!.message).toMatch(/column/i);
      expect(report.errors[3]!.message).toMatch(/column/i);
      expect(await repo.count(t)).toBe(0);
    }
  });

  test('refuses a CSV with an unterminated quote or an unknown header, writing nothing', async () => {
    const t = newTenant();
    const unterminated = await importFile(repo, file('csv', `tenant_id,source_system,legacy_archive_id\n${t},avaya_aura,ok1\n${t},avaya_aura,"open\n${t},avaya_aura,ok2\n`));
    expect(unterminated.written).toBeNull();
    expect(unterminated.errors).toHaveLength(1);
    expect(unterminated.errors[0]!.line).toBe(3);
    expect(unterminated.errors[0]!.message).toMatch(/^CSV syntax: .*quote/i);
    const strayQuote = await importFile(repo, file('csv', `tenant_id,source_system,legacy_archive_id\r\n${t},avaya_aura,"a\r\nb"\r\n${t},avaya_aura,ok1\r\n${t},avaya_aura,ab"c\r\n`));
    expect(strayQuote.written).toBeNull();
    expect(strayQuote.errors.map((e) => e.line)).toEqual([5]);
    const dupHeader = await importFile(repo, file('csv', `tenant_id,source_system,tenant_id\n${t},avaya_aura,${t}\n`));
    expect(dupHeader.errors).toEqual([{ line: 1, message: expect.stringMatching(/tenant_id/) }]);
    // A header alone (or nothing) is an empty import, not an error.
    expect(await importFile(repo, file('csv', 'tenant_id,source_system,legacy_archive_id\n'))).toEqual({ rows: 0, errors: [], written: { inserted: 0, updated: 0, unchanged: 0, holdsPlaced: 0 } });
    expect(await importFile(repo, file('csv', ''))).toEqual({ rows: 0, errors: [], written: { inserted: 0, updated: 0, unchanged: 0, holdsPlaced: 0 } });
    const unknown = await importFile(repo, file('csv', `tenant_id,source_system,legacy_archive_id,colour\n${t},avaya_aura,ok1,blue\n`));
    expect(unknown.written).toBeNull();
    expect(unknown.errors[0]).toMatchObject({ line: 2 });
    expect(unknown.errors[0]!.message).toMatch(/colour/);
    expect(await repo.count(t)).toBe(0);
  });

  // A file without LF (CR-only line ends, a recording given by mistake) was read as one line, held whole in memory.
  test('a line past 1 MiB is a bad row, reported without holding it; CR-only line ends are named', async () => {
    const t = newTenant();
    const row = (id: string) => JSON.stringify({ tenant_id: t, source_system: 'avaya_aura', legacy_archive_id: id });
    const huge = join(dir, `f${++fileSeq}.jsonl`);
    writeFileSync(huge, Buffer.concat([Buffer.from(row('ok1') + '\n'), Buffer.alloc(3 * 1024 * 1024, 0x20), Buffer.from('\n' + row('ok2') + '\n')]));
    expect(await importFile(repo, huge)).toMatchObject({ written: null, errors: [{ line: 2, message: expect.stringMatching(/^longer than 1 MiB/) }] });
    const hugeCsv = join(dir, `f${++fileSeq}.csv`);
    writeFileSync(hugeCsv, Buffer.concat([Buffer.from(`tenant_id,source_system,legacy_archive_id\n${t},avaya_aura,`), Buffer.alloc(3 * 1024 * 1024, 0x61), Buffer.from('\n')]));
    expect(await importFile(repo, hugeCsv)).toMatchObject({ written: null, errors: [{ line: 2, message: expect.stringMatching(/^longer than 1 MiB/) }] });
    const crOnly = file('jsonl', [row('c1'), row('c2'), ''].join('\r'));
    expect(await importFile(repo, crOnly)).toMatchObject({ written: null, errors: [{ line: 1, message: expect.stringMatching(/CR characters/) }] });
    expect(await repo.count(t)).toBe(0);
  });

  // Bytes that are not UTF-8 were decoded to U+FFFD and imported as a different identifier, silently.
  test('refuses a line that is not UTF-8, and a file it cannot read, writing nothing', async () => {
    const t = newTenant();
    const row = (id: string) => Buffer.from(JSON.stringify({ tenant_id: t, source_system: 'avaya_aura', legacy_archive_id: id }) + '\n');
    const bad = Buffer.concat([row('ok1'), Buffer.from(JSON.stringify({ tenant_id: t, source_system: 'avaya_aura', legacy_archive_id: 'x' }).replace('"x"', '"x\xff"'), 'latin1'), Buffer.from('\n'), row('ok2')]);
    const p = join(dir, `f${++fileSeq}.jsonl`);
    writeFileSync(p, bad);
    expect(await importFile(repo, p)).toMatchObject({ written: null, errors: [{ line: 2, message: 'not valid UTF-8' }] });
    const csv = join(dir, `f${++fileSeq}.csv`);
    writeFileSync(csv, Buffer.concat([Buffer.from(`tenant_id,source_system,legacy_archive_id\n${t},avaya_aura,"multi\nline"\n${t},avaya_aura,ok\n${t},avaya_aura,b`), Buffer.from([0xc3]), Buffer.from('\n')]));
    expect(await importFile(repo, csv)).toMatchObject({ written: null, errors: [{ line: 5, message: 'not valid UTF-8' }] });
    // U+FFFD itself, written as UTF-8, is a character like any other
    expect((await importFile(repo, file('jsonl', jsonl([{ tenant_id: t, source_system: 'avaya_aura', legacy_archive_id: 'r\ufffd' }])))).errors).toEqual([]);
    expect(await repo.count(t)).toBe(1);
    for (const missing of [join(dir, 'absent.jsonl'), join(dir, 'absent.csv'), dir]) {
      const r = await importFile(repo, missing);
      expect(r).toMatchObject({ written: null, errors: [{ line: 0, message: expect.stringMatching(/^cannot read the file \((ENOENT|EISDIR)/) }] });
    }
  });

  test('an export re-imports into a fresh catalog as the same catalog', async () => {
    const t = newTenant();
    const u = newTenant();
    const [cloud8923, legacy8923, ...restBrief] = briefRecords(t);
    // external_tag and sip_call_id live only as refs (no column): the export must still carry them.
    // 8923 has two copies, one tag and two SIP Call-IDs; n-7 one copy and two tags (a repeat line).
    const rows = [
      { ...cloud8923, external_tag: 'avaya_8923-tag', sip_call_id: 'abc@10.0.0.1' },
      { ...legacy8923, sip_call_id: 'def@10.0.0.2' },
      ...restBrief,
      { tenant_id: t, source_system: 'verint', locator: 'verint/x.wav', state: 'ARCHIVED', key_id: 'kms-key-1', source_retention_expiry: '2029-01-01T00:00:00Z' },
      { tenant_id: u, call_id: '2024-01-01T08:00:00+01:00-7', source_system: 'nice', legacy_archive_id: 'n-7', started_at: '2024-01-01T07:00:00Z', connector: 'nice-archive', external_tag: 'nice-tag-1' },
      { tenant_id: u, call_id: '2024-01-01T08:00:00+01:00-7', source_system: 'nice', legacy_archive_id: 'n-7', external_tag: 'nice-tag-2' },
    ];
    expect((await importFile(repo, file('jsonl', jsonl(rows)))).errors).toEqual([]);
    const crossRefs: [string, string, string][] = [
      [t, 'avaya_8923-tag', 'rec_5f3a2b1c9d8e7f6g5h4i3j2k1l'],
      [t, 'abc@10.0.0.1', 'rec_5f3a2b1c9d8e7f6g5h4i3j2k1l'],
      [t, 'def@10.0.0.2', 'rec_5f3a2b1c9d8e7f6g5h4i3j2k1l'],
      [u, 'nice-tag-1', 'n-7'],
      [u, 'nice-tag-2', 'n-7'],
    ];

    const exportOf = async (r: RecordingRepository, tenants: string[]) => {
      const out: string[] = [];
      for (const tenant of tenants) for await (const rec of r.iterate(tenant, 2)) for (const cr of toCatalogRecords(rec)) out.push(JSON.stringify(cr));
      return out.sort();
    };
    const first = await exportOf(repo, [t, u]);
    expect(first).toHaveLength(rows.length);

    const fresh = await openTestCatalog(kind);
    try {
      const freshRepo = new RecordingRepository(fresh.db);
      const report = await importFile(freshRepo, file('jsonl', first.join('\n') + '\n'));
      expect(report.errors).toEqual([]);
      // n-7's repeat line (its second tag) finds the copy its first line made: unchanged.
      expect(report.written).toEqual({ inserted: 4, updated: 1, unchanged: 1, holdsPlaced: 1 });
      for (const [tenant, ref, sameAs] of crossRefs) {
        const found = await freshRepo.findByRef(tenant, ref);
        expect(found?.id, ref).toBe((await freshRepo.findByRef(tenant, sameAs))!.id);
      }
      const second = await exportOf(freshRepo, [t, u]);
      expect(second).toEqual(first);
      // And the export imported back into the original catalog is a no-op.
      expect((await importFile(repo, file('jsonl', second.join('\n')))).written).toEqual({ inserted: 0, updated: 0, unchanged: rows.length, holdsPlaced: 0 });
    } finally {
      await fresh.dispose();
    }
  });

  test('stops collecting after maxErrors', async () => {
    const t = newTenant();
    const lines = Array.from({ length: 50 }, () => '{bad');
    const report = await importFile(repo, file('jsonl', lines.join('\n')), { maxErrors: 5 });
    expect(report.errors.map((e) => e.line)).toEqual([1, 2, 3, 4, 5]);
    expect(report.written).toBeNull();
    expect(await repo.count(t)).toBe(0);
  });
});
