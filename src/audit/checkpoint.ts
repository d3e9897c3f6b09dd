/**
 * A signed checkpoint: "the chain had `eventCount` events, and the one at `lastSeq` hashed to
 * `lastHash`". Someone able to rewrite the audit tables can rebuild a hash chain that verifies,
 * but cannot make the key service sign it: the checkpoints pin the chain as it was.
 */
export interface Checkpoint {
  id: number;
  lastSeq: number;
  lastHash: string;
  eventCount: number;
  createdAt: string;
  keyId: string;
  algorithm: string;
  /** base64 Ed25519 signature over canonicalCheckpoint(). */
  signature: string;
}

export type CheckpointFields = Omit<Checkpoint, 'id' | 'signature'>;

/**
 * The signed bytes: a JSON array in a fixed order (UTF-8). Changing it breaks every stored
 * checkpoint: add a version instead.
 */
export function canonicalCheckpoint(c: CheckpointFields): string {
  return JSON.stringify(['custodian.checkpoint.v1', c.lastSeq, c.lastHash, c.eventCount, c.createdAt, c.keyId, c.algorithm]);
}
