import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CatalogRecord } from '../catalog/record.js';

/** Fixture audio shipped with the repo (copied from the shared fixtures: synthetic speech, no real person). */
export const DEMO_AUDIO_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../demo/audio');

export const DEMO_TENANT = 'demo';
export const OTHER_TENANT = 'other';
export const DEMO_CALLER = 'compliance_tool_user_01';

interface DemoFile {
  file: string;
  locator: string;
  record: Omit<CatalogRecord, 'tenant_id' | 'state' | 'legal_hold'> & { legal_hold?: boolean };
}

/** The archive layout imitates the exports the connectors meet: vendor folders, dated paths. */
const DEMO_FILES: DemoFile[] = [
  {
    file: 'call_mono_g729_8k.wav',
    locator: 'avaya/2023/10/27/avaya_8923.wav',
    record: { call_id: '2023-10-27T14:30:00Z-8923', source_system: 'avaya_aura', legacy_archive_id: 'avaya_8923', storage_location: 'LEGACY_ARCHIVE', customer_ref: 'CUST-8923', retention_expiry: '2032-10-27T14:30:00Z', encryption_status: 'AES_256' },
  },
  {
    file: 'call_mono_g729_8k.wav',
    locator: 'avaya/2023/11/02/avaya_7001.wav',
    record: { call_id: '2023-11-02T10:05:00Z-7001', source_system: 'avaya_aura', legacy_archive_id: 'avaya_7001', storage_location: 'LEGACY_ARCHIVE', retention_expiry: '2032-11-02T00:00:00Z' },
  },
  {
    file: 'call_mono_mulaw_8k.wav',
    locator: 'cisco/2024/03/05/ms_1001.wav',
    record: { call_id: '2024-03-05T09:12:00Z-1001', source_system: 'cisco_mediasense', legacy_archive_id: 'ms_1001', storage_location: 'LEGACY_ARCHIVE', retention_expiry: '2031-03-05T00:00:00Z' },
  },
  {
    file: 'call_mono_alaw_8k.wav',
    locator: 'verint/2024/04/01/10/v_2001.wav',
    record: { call_id: '2024-04-01T10:00:00Z-2001', source_system: 'verint', legacy_archive_id: 'v_2001', storage_location: 'LEGACY_ARCHIVE', retention_expiry: '2031-04-01T00:00:00Z' },
  },
  {
    file: 'call_mono_gsm610_8k.wav',
    locator: 'verint/2024/04/01/11/v_2002.wav',
    record: { call_id: '2024-04-01T11:00:00Z-2002', source_system: 'verint', legacy_archive_id: 'v_2002', storage_location: 'LEGACY_ARCHIVE', retention_expiry: '2031-04-01T00:00:00Z' },
  },
  {
    file: 'call_stereo_pcm16_8k.wav',
    locator: 'verint/2024/04/02/09/v_2003.wav',
    record: { call_id: '2024-04-02T09:30:00Z-2003', source_system: 'verint', legacy_archive_id: 'v_2003', storage_location: 'LEGACY_ARCHIVE', retention_expiry: '2031-04-02T00:00:00Z' },
  },
  {
    file: 'call_mono_g722_16k.wav',
    locator: 'nice/export/n_3001.wav',
    record: { call_id: '2024-05-10T15:45:00Z-3001', source_system: 'nice', legacy_archive_id: 'n_3001', storage_location: 'LEGACY_ARCHIVE', retention_expiry: '2031-05-10T00:00:00Z' },
  },
  {
    file: 'call_mono_g729_8k.g729',
    locator: 'cisco/raw/ms_1002.g729',
    record: { call_id: '2024-03-06T08:00:00Z-1002', source_system: 'cisco_mediasense', legacy_archive_id: 'ms_1002', storage_location: 'LEGACY_ARCHIVE', codec: 'g729', retention_expiry: '2031-03-06T00:00:00Z' },
  },
  {
    file: 'call_mono_pcm16_8k.wav',
    locator: 'avaya/2019/01/15/avaya_1234.wav',
    record: { call_id: '2019-01-15T12:00:00Z-1234', source_system: 'avaya_aura', legacy_archive_id: 'avaya_1234', storage_location: 'LEGACY_ARCHIVE', retention_expiry: '2024-01-15T12:00:00Z' },
  },
  {
    file: 'call_mono_pcm16_8k.wav',
    locator: 'avaya/2019/02/20/avaya_5678.wav',
    record: { call_id: '2019-02-20T16:20:00Z-5678', source_system: 'avaya_aura', legacy_archive_id: 'avaya_5678', storage_location: 'LEGACY_ARCHIVE', retention_expiry: '2024-02-20T16:20:00Z', legal_hold: true },
  },
  {
    file: 'call_mono_8k.mp3',
    locator: 'misc/mp3_4001.mp3',
    record: { call_id: '2025-01-20T08:00:00Z-4001', source_system: 'filesystem', legacy_archive_id: 'mp3_4001', storage_location: 'LEGACY_ARCHIVE', retention_expiry: '2032-01-20T00:00:00Z' },
  },
  {
    file: 'call_mono_48k.opus.ogg',
    locator: 'misc/opus_4002.ogg',
    record: { call_id: '2025-01-21T08:00:00Z-4002', source_system: 'filesystem', legacy_archive_id: 'opus_4002', storage_location: 'LEGACY_ARCHIVE', retention_expiry: '2032-01-21T00:00:00Z' },
  },
];

const sha256File = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Lays out both tenants' archives under the data directory and returns the catalog records for them. */
export function prepareDemoArchives(dataDir: string): { demoRoot: string; otherRoot: string; records: CatalogRecord[] } {
  const demoRoot = join(dataDir, 'demo-archive', DEMO_TENANT);
  const otherRoot = join(dataDir, 'demo-archive', OTHER_TENANT);
  const records: CatalogRecord[] = [];
  for (const f of DEMO_FILES) {
    const target = join(demoRoot, f.locator);
    mkdirSync(dirname(target), { recursive: true });
    if (!existsSync(target)) copyFileSync(join(DEMO_AUDIO_DIR, f.file), target);
    records.push({
      ...f.record,
      tenant_id: DEMO_TENANT,
      connector: 'demo-archive',
      locator: f.locator,
      state: 'AVAILABLE',
      legal_hold: f.record.legal_hold ?? false,
      size_bytes: readFileSync(target).length,
      sha256: sha256File(target),
    });
  }
  // The brief's own example: the same call also has a Genesys Cloud copy (served once a Genesys source is configured).
  records.push({
    tenant_id: DEMO_TENANT,
    call_id: '2023-10-27T14:30:00Z-8923',
    source_system: 'genesys_cloud',
    recording_id: 'rec_5f3a2b1c9d8e7f6g5h4i3j2k1l',
    conversation_id: 'c0a8f3e2-8923-4d1b-9e7a-2023102714300',
    storage_location: 'GENESYS_CLOUD_ARCHIVE',
    retention_expiry: '2032-10-27T14:30:00Z',
    encryption_status: 'AES_256',
    state: 'AVAILABLE',
    legal_hold: false,
  });
  records.push(
    {
      tenant_id: DEMO_TENANT,
      call_id: '2025-01-15T09:30:00Z-0001',
      source_system: 'genesys_cloud',
      recording_id: 'rec_cloud_only_0001',
      conversation_id: DEMO_GENESYS_RECORDINGS[1]!.conversationId,
      storage_location: 'GENESYS_CLOUD_ARCHIVE',
      retention_expiry: '2032-01-15T00:00:00Z',
      state: 'AVAILABLE',
      legal_hold: false,
    },
    {
      tenant_id: DEMO_TENANT,
      call_id: '2024-06-01T12:00:00Z-0002',
      source_system: 'genesys_cloud',
      recording_id: 'rec_archived_0002',
      conversation_id: DEMO_GENESYS_RECORDINGS[2]!.conversationId,
      storage_location: 'GENESYS_CLOUD_ARCHIVE',
      retention_expiry: '2032-06-01T00:00:00Z',
      // As a sync would store it (Genesys's fileState): the retrieve answers 202 and a job restores it.
      state: 'ARCHIVED',
      legal_hold: false,
    },
  );
  const otherFile = join(otherRoot, 'other_0001.wav');
  mkdirSync(dirname(otherFile), { recursive: true });
  if (!existsSync(otherFile)) copyFileSync(join(DEMO_AUDIO_DIR, 'call_mono_pcm16_8k.wav'), otherFile);
  records.push({
    tenant_id: OTHER_TENANT,
    call_id: '2024-06-01T10:00:00Z-0001',
    source_system: 'avaya_aura',
    legacy_archive_id: 'other_0001',
    customer_ref: 'OTHER-SECRET-0001',
    connector: 'other-archive',
    locator: 'other_0001.wav',
    storage_location: 'LEGACY_ARCHIVE',
    retention_expiry: '2032-06-01T00:00:00Z',
    state: 'AVAILABLE',
    legal_hold: false,
  });
  return { demoRoot, otherRoot, records };
}

/** Genesys Cloud recordings of the demo: the brief's example (AVAILABLE), a cloud-only call, and an archived one. */
export const DEMO_GENESYS_RECORDINGS = [
  { conversationId: 'c0a8f3e2-8923-4d1b-9e7a-2023102714300', recordingId: 'rec_5f3a2b1c9d8e7f6g5h4i3j2k1l', file: 'call_mono_pcm16_8k.wav', fileState: 'AVAILABLE' as const },
  { conversationId: '5b7e9c1a-0001-4c6d-8e2f-202501150930', recordingId: 'rec_cloud_only_0001', file: 'call_stereo_pcm16_8k.wav', fileState: 'AVAILABLE' as const },
  { conversationId: '9d3f2a7b-0002-4e8c-b1a6-202406011200', recordingId: 'rec_archived_0002', file: 'call_mono_pcm16_8k.wav', fileState: 'ARCHIVED' as const },
];

/** A demo key survives restarts (kept in the data directory) unless one is given by config or environment. */
export function demoKey(dataDir: string, id: string): string {
  const path = join(dataDir, `${id}.key`);
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const key = `cst_${id}_${randomBytes(24).toString('base64url')}`;
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(path, key + '\n', { mode: 0o600 });
  return key;
}
