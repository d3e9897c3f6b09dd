import { describe, expect, it } from 'vitest';
import type { Copy, Recording } from '../src/catalog/model.js';
import { orderCopies, readableCopies } from '../src/resolve/copy-policy.js';

const copy = (id: string, origin: Copy['origin'], state: string, extra: Partial<Copy> = {}): Copy => ({
  id,
  recordingPk: 'r1',
  tenantId: 'acme',
  sourceSystem: origin === 'GENESYS_CLOUD' ? 'genesys_cloud' : 'avaya_aura',
  origin,
  connector: null,
  storageLocation: null,
  locator: null,
  genesysRecordingId: null,
  legacyArchiveId: null,
  state,
  codec: null,
  sizeBytes: null,
  sha256: null,
  encryptionStatus: null,
  keyId: null,
  sourceRetentionExpiry: null,
  ...extra,
});

const rec = (copies: Copy[]): Recording => ({
  id: 'r1',
  tenantId: 'acme',
  callId: 'c1',
  customerRef: null,
  conversationId: 'conv-1',
  startedAt: null,
  retentionExpiry: null,
  legalHold: false,
  createdAt: '2024-01-01T00:00:00Z',
  updatedAt: '2024-01-01T00:00:00Z',
  copies,
});

const ids = (copies: Copy[]) => copies.map((c) => c.id);

describe('copy order', () => {
  it('tries a Genesys copy the catalog marks ARCHIVED, RESTORING or UPLOADING (the connector reads the live state and a job restores it)', () => {
    for (const state of ['ARCHIVED', 'RESTORING', 'UPLOADING']) {
      expect(ids(orderCopies(rec([copy('g', 'GENESYS_CLOUD', state)]), 'cloud')), state).toEqual(['g']);
      expect(ids(orderCopies(rec([copy('g', 'GENESYS_CLOUD', state)]), 'legacy')), state).toEqual(['g']);
    }
  });

  it('puts every readable copy first, in preference order, and the preparing Genesys copies after them', () => {
    const r = rec([
      copy('g-arch', 'GENESYS_CLOUD', 'ARCHIVED'),
      copy('l-ok', 'LEGACY_ARCHIVE', 'AVAILABLE'),
      copy('g-rest', 'GENESYS_CLOUD', 'RESTORED'),
      copy('g-up', 'GENESYS_CLOUD', 'UPLOADING'),
    ]);
    expect(ids(orderCopies(r, 'cloud'))).toEqual(['g-rest', 'l-ok', 'g-arch', 'g-up']);
    expect(ids(orderCopies(r, 'legacy'))).toEqual(['l-ok', 'g-rest', 'g-arch', 'g-up']);
    // What can be read without asking a source: the catalog's readable states only.
    expect(ids(readableCopies(r, 'cloud'))).toEqual(['g-rest', 'l-ok']);
  });

  it('never tries DELETED or ERROR copies, a legacy copy that is not readable, or one past its source deletion date', () => {
    const r = rec([
      copy('g-del', 'GENESYS_CLOUD', 'DELETED'),
      copy('g-err', 'GENESYS_CLOUD', 'ERROR'),
      copy('g-gone', 'GENESYS_CLOUD', 'ARCHIVED', { sourceRetentionExpiry: '2020-01-01T00:00:00Z' }),
      copy('l-arch', 'LEGACY_ARCHIVE', 'ARCHIVED'),
      copy('l-rest', 'LEGACY_ARCHIVE', 'RESTORING'),
      copy('l-err', 'LEGACY_ARCHIVE', 'ERROR'),
    ]);
    expect(orderCopies(r, 'cloud')).toEqual([]);
  });
});
