import { describe, expect, it } from 'vitest';
import type { Copy, Recording } from '../catalog/model.js';
import { copyRetentionStatus, expiryReason, retentionStatus } from './retention.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const PAST = '2026-01-01T00:00:00.000Z';
const FUTURE = '2030-01-01T00:00:00.000Z';

const copy = (id: string, sourceRetentionExpiry: string | null = null): Copy => ({
  id,
  recordingPk: 'r',
  tenantId: 't',
  sourceSystem: id === 'cloud' ? 'genesys_cloud' : 'avaya_aura',
  origin: id === 'cloud' ? 'GENESYS_CLOUD' : 'LEGACY_ARCHIVE',
  connector: null,
  storageLocation: null,
  locator: null,
  genesysRecordingId: null,
  legacyArchiveId: null,
  state: 'AVAILABLE',
  codec: null,
  sizeBytes: null,
  sha256: null,
  encryptionStatus: null,
  keyId: null,
  sourceRetentionExpiry,
});

const rec = (o: Partial<Recording>): Recording => ({
  id: 'r',
  tenantId: 't',
  callId: null,
  customerRef: null,
  conversationId: null,
  startedAt: null,
  retentionExpiry: null,
  legalHold: false,
  activeHolds: 0,
  createdAt: PAST,
  updatedAt: PAST,
  copies: [copy('cloud'), copy('legacy')],
  ...o,
});

describe('retention: catalog obligation, source deletion, legal hold', () => {
  it('the catalog date is the obligation of record', () => {
    expect(retentionStatus(rec({ retentionExpiry: FUTURE }), NOW)).toBe('ACTIVE');
    expect(retentionStatus(rec({ retentionExpiry: PAST }), NOW)).toBe('EXPIRED');
    expect(retentionStatus(rec({}), NOW)).toBe('ACTIVE');
    expect(expiryReason(rec({ retentionExpiry: PAST }), NOW)).toBe(`retention ended ${PAST}`);
  });

  it("a source's own deletion date expires only that copy; all copies gone at their sources is EXPIRED", () => {
    const one = rec({ retentionExpiry: FUTURE, copies: [copy('cloud', PAST), copy('legacy', FUTURE)] });
    expect(retentionStatus(one, NOW)).toBe('ACTIVE');
    expect(copyRetentionStatus(one, one.copies[0]!, NOW)).toBe('EXPIRED');
    expect(copyRetentionStatus(one, one.copies[1]!, NOW)).toBe('ACTIVE');
    const all = rec({ retentionExpiry: FUTURE, copies: [copy('cloud', PAST), copy('legacy', '2025-01-01T00:00:00.000Z')] });
    expect(retentionStatus(all, NOW)).toBe('EXPIRED');
    expect(expiryReason(all, NOW)).toMatch(/deleted at its source.*2026-01-01/);
    // A catalog without a date of its own: the sources' dates are all there is.
    expect(retentionStatus(rec({ copies: [copy('cloud', PAST)] }), NOW)).toBe('EXPIRED');
    expect(retentionStatus(rec({ copies: [] }), NOW)).toBe('ACTIVE');
  });

  it('a legal hold — a hold record or the imported flag — overrides every date', () => {
    for (const held of [{ activeHolds: 1 }, { legalHold: true }]) {
      const r = rec({ retentionExpiry: PAST, copies: [copy('cloud', PAST), copy('legacy', FUTURE)], ...held });
      expect(retentionStatus(r, NOW)).toBe('LEGAL_HOLD');
      expect(copyRetentionStatus(r, r.copies[1]!, NOW)).toBe('LEGAL_HOLD');
    }
    expect(retentionStatus(rec({ retentionExpiry: PAST, activeHolds: 0 }), NOW)).toBe('EXPIRED');
  });
});
