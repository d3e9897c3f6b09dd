import { randomUUID } from 'node:crypto';
import { isAppError } from '../../errors.js';
import type { AuthzSubject, GenesysApiClient, TimedAnswer } from './api-client.js';
import type { ViewSensitiveData } from './config.js';

/**
 * Preflight of one Genesys source (`custodian doctor`, /readyz): can we log in, who are we, may
 * we make each call the gateway makes, how long do media links live, and is our clock right.
 *
 * Who we are: GET /api/v2/tokens/me. It is NOT in the OpenAPI extracts (../shared/reference/
 * genesys-openapi holds the recording, conversations and analytics groups; tokens/me belongs to
 * the Tokens group), so its answer is read leniently after the public SDKs' TokenInfo model and a
 * failure of it is only a warning. TokenInfo names the client and its organisation but not its
 * rights (client-credentials clients get rights from roles), so rights are found the documented
 * way: each call is tried once with ids that cannot exist, and a 403 is reported with its Genesys
 * error code and the permissions the extracts' `x-inin-requires-permissions` list for that call.
 *
 * One right cannot be found by trying a call: recording:recording:viewSensitiveData. Without it,
 * and with the org's sensitive data redaction on, GET …/recordings/{recordingId} answers 200 with
 * redacted media (recording.yml). It is read from the token's grants (GET
 * /api/v2/authorization/subjects/me, also outside the extracts); missing or unreadable, it is a
 * warning, and retrievals are audited `sensitive_data: may_be_redacted` (connector.ts). An operator
 * may declare it (`view_sensitive_data`), which stands in for grants that cannot be read and is
 * checked against grants that can (sensitiveDataCheck).
 */

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface PreflightCheck {
  /** Stable id, e.g. "login", "rights.recordings". */
  id: string;
  /** What was checked, for people. */
  label: string;
  status: CheckStatus;
  /** One line for people. Never a token, secret or media link. */
  detail: string;
  /** Our error code when the check failed on an AppError. */
  code?: string;
  /** Facts for machines (--json). */
  data?: Record<string, unknown>;
}

export interface PreflightReport {
  /** The source answered at all (null: unknown). */
  reachable: boolean | null;
  /** The configured credentials were accepted (null: unknown or not applicable). */
  credentials: boolean | null;
  checks: PreflightCheck[];
}

/** Media links shorter-lived than this draw a warning: long or slow downloads need fresh links and resumes. */
export const SHORT_LINK_TTL_MINUTES = 10;
/** Clock skew beyond this draws a warning (the Date header has 1 s resolution). */
export const SKEW_WARN_MS = 5_000;

/**
 * The permissions each call needs (x-inin-requires-permissions, type ANY, of the extracts). The
 * restore (PUT …/recordings/{recordingId} of an ARCHIVED recording) needs one of `restoreView`
 * ("view … is always required") AND `restore`; the connector sends the deleteDate back unchanged,
 * so it needs no editRetention. `viewSensitiveData` is no call's requirement: without it media may
 * come back redacted.
 */
export const REQUIRED_PERMISSIONS = {
  recordingmetadata: ['recording:recording:view', 'recording:recordingSegment:view', 'recording:snippetRecording:view', 'recording:screenRecording:view'],
  recordings: ['recording:recording:view', 'recording:recordingSegment:view', 'recording:snippetRecording:view', 'recording:screenRecording:view'],
  analytics: ['analytics:conversationDetail:view', 'analytics:agentConversationDetail:view'],
  restoreView: ['recording:recording:view', 'recording:screenRecording:view', 'recording:snippetRecording:view'],
  restore: ['recording:recording:restore'],
  viewSensitiveData: ['recording:recording:viewSensitiveData'],
} as const;

/** Whether the token holds a permission, as its grants (GET /api/v2/authorization/subjects/me) say. */
export type GrantState =
  | { held: 'all_divisions' }
  /** Only in these divisions (ids): recordings elsewhere are not covered. */
  | { held: 'some_divisions'; divisions: string[] }
  | { held: 'no' }
  /** The grants could not be read. */
  | { held: 'unknown'; error: unknown };

/**
 * What the grants say of `permission` ("domain:entity:action"): a policy of that domain and entity
 * (or "*") whose actions include the action (or "*"), without a condition (a conditional grant
 * cannot be judged here), in the grant's division ("*" is every division).
 */
export function grantStateOf(subject: AuthzSubject, permission: string): GrantState {
  const [domain, entity, action] = permission.split(':');
  const divisions = new Set<string>();
  for (const g of Array.isArray(subject.grants) ? subject.grants : []) {
    const policies = Array.isArray(g?.role?.policies) ? g.role.policies : [];
    const holds = policies.some(
      (p) =>
        (p?.domain === domain || p?.domain === '*') &&
        (p?.entityName === entity || p?.entityName === '*') &&
        Array.isArray(p?.actions) &&
        (p.actions.includes(action ?? '') || p.actions.includes('*')) &&
        (p.condition === undefined || p.condition === null || p.condition === ''),
    );
    if (holds) divisions.add(typeof g.division?.id === 'string' ? g.division.id : '?');
  }
  if (divisions.has('*')) return { held: 'all_divisions' };
  if (divisions.size > 0) return { held: 'some_divisions', divisions: [...divisions] };
  return { held: 'no' };
}

/** recording:recording:viewSensitiveData of the token's grants; never throws. */
export async function readViewSensitiveData(api: GenesysApiClient, signal: AbortSignal): Promise<GrantState> {
  try {
    return grantStateOf(await api.getAuthorizationSubjectMe(signal), REQUIRED_PERMISSIONS.viewSensitiveData[0]);
  } catch (e) {
    return { held: 'unknown', error: e };
  }
}

/**
 * What a retrieval's audit event says of a Genesys copy's media: `unredacted` only when the grants
 * show viewSensitiveData in every division; otherwise Genesys may have redacted it (recording.yml:
 * when the permission is missing and the org has redaction enabled, which the gateway cannot see).
 */
export type SensitiveData = 'unredacted' | 'may_be_redacted';
export const sensitiveDataOf = (g: GrantState): SensitiveData => (g.held === 'all_divisions' ? 'unredacted' : 'may_be_redacted');

/** Where `sensitive_data` comes from: the client's grants, the operator's declaration, or neither (grants unreadable). */
export type SensitiveDataBasis = 'grants' | 'declared' | 'unknown';

/** The audit event's `sensitive_data` and `sensitive_data_basis` (docs/AUDIT.md). */
export interface SensitiveDataStatement {
  sensitive_data: SensitiveData;
  sensitive_data_basis: SensitiveDataBasis;
}

/**
 * Readable grants decide, whatever is declared: they are Genesys's own account of the token, and an
 * audit event must not carry an operator's statement its grants contradict (the preflight reports
 * the contradiction). A declaration (`view_sensitive_data`) stands in only for grants that could
 * not be read; without one, nothing is known and the media may be redacted.
 */
export function sensitiveDataStatement(g: GrantState, declared: ViewSensitiveData): SensitiveDataStatement {
  if (g.held !== 'unknown') return { sensitive_data: sensitiveDataOf(g), sensitive_data_basis: 'grants' };
  if (declared === 'auto') return { sensitive_data: 'may_be_redacted', sensitive_data_basis: 'unknown' };
  return { sensitive_data: declared === 'granted' ? 'unredacted' : 'may_be_redacted', sensitive_data_basis: 'declared' };
}

/**
 * The preflight's account of viewSensitiveData. Without a declaration: ok when held everywhere,
 * else a warning (never a failure: the gateway works either way). With one:
 * - grants unreadable: ok, "declared" (the operator has said what the gateway cannot read);
 * - grants agreeing: ok;
 * - `granted` while the grants show it missing (or only in some divisions): a FAILURE. The operator
 *   relies on unredacted media (a declaration is only worth making when it is relied on), and the
 *   role does not deliver it: recordings with PCI/PII data come back redacted — lost to whoever
 *   asked for them — until the role or the declaration is fixed. A warning would say no more than
 *   `auto` does. The audit stays true meanwhile (readable grants decide it);
 * - `not_granted` while the grants show it everywhere: a warning. Nothing is lost (media comes back
 *   whole and is audited so, from the grants); the declaration is only out of date.
 */
export function sensitiveDataCheck(g: GrantState, declared: ViewSensitiveData = 'auto'): PreflightCheck {
  const perm = REQUIRED_PERMISSIONS.viewSensitiveData[0];
  const base = { id: 'rights.view_sensitive_data', label: `rights: ${perm} (unredacted media)` };
  const stated = sensitiveDataStatement(g, declared);
  const facts = { ...stated, ...(declared !== 'auto' ? { declared } : {}) };
  const consequence = `Genesys redacts recordings with sensitive data when the org has redaction enabled; retrievals are audited sensitive_data: may_be_redacted`;
  const where = g.held === 'all_divisions' ? 'in every division' : g.held === 'some_divisions' ? `only in division(s) ${g.divisions.join(', ')}` : 'nowhere';
  if (g.held === 'unknown') {
    const said = `could not read the client's grants (GET /api/v2/authorization/subjects/me, not in the OpenAPI extracts): ${describe(g.error)}`;
    if (declared !== 'auto') {
      return {
        ...base,
        status: 'ok',
        detail: `declared ${declared} (view_sensitive_data); ${said}; retrievals are audited sensitive_data: ${stated.sensitive_data} (basis declared)`,
        data: { ...facts, ...extraOf(g.error) },
      };
    }
    return { ...base, status: 'warn', code: codeOf(g.error), detail: `${said}; ${consequence}`, data: { ...facts, ...extraOf(g.error) } };
  }
  if (declared === 'granted' && g.held !== 'all_divisions') {
    return {
      ...base,
      status: 'fail',
      detail: `declared granted (view_sensitive_data), but the client's grants hold it ${where}: ${consequence}; give the OAuth client's role ${perm} in every division, or declare not_granted`,
      data: { ...facts, ...(g.held === 'some_divisions' ? { divisions: g.divisions } : {}) },
    };
  }
  if (declared === 'not_granted' && g.held === 'all_divisions') {
    return {
      ...base,
      status: 'warn',
      detail: `declared not_granted (view_sensitive_data), but the client's grants hold it in every division: media comes back unredacted and is audited so (from the grants); correct the declaration`,
      data: facts,
    };
  }
  if (declared !== 'auto') {
    return { ...base, status: 'ok', detail: `held ${where}, as declared (${declared}): retrievals are audited sensitive_data: ${stated.sensitive_data}`, data: { ...facts, ...(g.held === 'some_divisions' ? { divisions: g.divisions } : {}) } };
  }
  switch (g.held) {
    case 'all_divisions':
      return { ...base, status: 'ok', detail: 'held in every division: media comes back unredacted', data: facts };
    case 'some_divisions':
      return { ...base, status: 'warn', detail: `held only in division(s) ${g.divisions.join(', ')}: elsewhere ${consequence}`, data: { ...facts, divisions: g.divisions } };
    default:
      return { ...base, status: 'warn', detail: `not held by the OAuth client's roles: ${consequence}`, data: facts };
  }
}

export interface GenesysPreflightDeps {
  api: GenesysApiClient;
  /** Gets a token (a fresh login when none is cached). */
  login: (signal: AbortSignal) => Promise<unknown>;
  clientId: string;
  maxResumes: number;
  /** The operator's declaration of viewSensitiveData (config `view_sensitive_data`); `auto` when absent. */
  viewSensitiveData?: ViewSensitiveData;
}

function codeOf(e: unknown): string {
  return isAppError(e) ? e.code : 'source.unavailable';
}

function extraOf(e: unknown): Record<string, unknown> {
  return isAppError(e) ? e.extra : {};
}

/** A short, link-free account of a failure: our code and what Genesys said (status and error code). */
function describe(e: unknown): string {
  const x = extraOf(e);
  const g = [x.genesys_status, x.genesys_code].filter((v) => v !== undefined).join(' ');
  return `${codeOf(e)}${g ? ` (Genesys ${g})` : ''}`;
}

/** Date header vs our clock at the middle of the exchange; undefined without a usable header. */
export function skewOf(a: Pick<TimedAnswer<unknown>, 'date' | 'sentAt' | 'receivedAt'>): { skewMs: number; uncertaintyMs: number } | undefined {
  const at = a.date ? Date.parse(a.date) : NaN;
  if (Number.isNaN(at)) return undefined;
  const mid = (a.sentAt + a.receivedAt) / 2;
  // The header is truncated to the second: the server's clock was somewhere in [at, at + 1 s).
  return { skewMs: Math.round(at + 500 - mid), uncertaintyMs: Math.round(500 + (a.receivedAt - a.sentAt) / 2) };
}

async function probe(
  id: 'recordingmetadata' | 'recordings' | 'analytics',
  label: string,
  call: () => Promise<unknown>,
): Promise<PreflightCheck> {
  const perms = REQUIRED_PERMISSIONS[id];
  try {
    await call();
    return { id: `rights.${id}`, label, status: 'ok', detail: 'allowed' };
  } catch (e) {
    const x = extraOf(e);
    // Made-up ids: "not found" means the permission check passed.
    if (isAppError(e) && e.code === 'recording.not_found') return { id: `rights.${id}`, label, status: 'ok', detail: 'allowed (probe ids not found, as expected)' };
    const data = { genesys_status: x.genesys_status, genesys_code: x.genesys_code, requires_any_of: [...perms] };
    if (x.genesys_status === 403) {
      return {
        id: `rights.${id}`,
        label,
        status: 'fail',
        code: codeOf(e),
        detail: `refused: 403 ${String(x.genesys_code ?? 'forbidden')}; the OAuth client's roles need one of ${perms.join(', ')}`,
        data,
      };
    }
    return { id: `rights.${id}`, label, status: 'fail', code: codeOf(e), detail: `failed: ${describe(e)}`, data };
  }
}

export async function genesysPreflight(deps: GenesysPreflightDeps, signal: AbortSignal): Promise<PreflightReport> {
  const checks: PreflightCheck[] = [];
  const { api } = deps;

  // 1. Login: reachable, and the client id and secret are accepted.
  try {
    await api.retrying(() => deps.login(signal), signal, 'Genesys login');
    checks.push({ id: 'login', label: 'login (client credentials)', status: 'ok', detail: `client ${deps.clientId} accepted` });
  } catch (e) {
    const refused = isAppError(e) && e.code === 'source.auth_failed';
    const reachable = refused || (isAppError(e) && e.code === 'source.bad_gateway');
    checks.push({
      id: 'login',
      label: 'login (client credentials)',
      status: 'fail',
      code: codeOf(e),
      detail: refused ? `the login endpoint refused client ${deps.clientId}: ${describe(e)}` : `the login endpoint ${reachable ? 'answered wrongly' : 'is not reachable'}: ${describe(e)}`,
      data: { ...extraOf(e) },
    });
    for (const [id, label] of [
      ['identity', 'identity (GET /api/v2/tokens/me)'],
      ['rights', 'rights (recordingmetadata, recordings, analytics query, viewSensitiveData)'],
      ['media_link_ttl', 'media link lifetime'],
      ['clock_skew', 'clock skew'],
    ] as const) {
      checks.push({ id, label, status: 'skip', detail: 'not tried: no token' });
    }
    return { reachable: reachable ? true : false, credentials: refused ? false : null, checks };
  }

  const timed: TimedAnswer<unknown>[] = [];

  // 2. Identity (not in the extracts: informational).
  try {
    const me = await api.getTokenInfo(signal);
    timed.push(me);
    const c = me.body.OAuthClient;
    const org = me.body.organization;
    const mismatch = c?.id !== undefined && c.id !== deps.clientId;
    checks.push({
      id: 'identity',
      label: 'identity (GET /api/v2/tokens/me)',
      status: mismatch ? 'warn' : 'ok',
      detail: `${mismatch ? `token belongs to client ${c?.id}, not the configured ${deps.clientId}; ` : ''}OAuth client "${c?.name ?? '?'}" (${c?.id ?? '?'}) of organisation "${org?.name ?? '?'}" (${org?.id ?? '?'})`,
      data: {
        client_id: c?.id,
        client_name: c?.name,
        grant_type: c?.authorizedGrantType,
        organization_id: org?.id,
        organization_name: org?.name,
        authorized_scope: me.body.authorizedScope ?? [],
        note: 'tokens/me is not in the OpenAPI extracts; rights are checked by trying each call',
      },
    });
  } catch (e) {
    checks.push({
      id: 'identity',
      label: 'identity (GET /api/v2/tokens/me)',
      status: 'warn',
      code: codeOf(e),
      detail: `could not read the client's identity: ${describe(e)} (tokens/me is not in the OpenAPI extracts; the gateway does not need it)`,
      data: { ...extraOf(e) },
    });
  }

  // 3. Rights: each call the gateway makes, once, with ids that cannot exist.
  const conv = randomUUID();
  const rec = randomUUID();
  const now = Date.now();
  const [probed, sensitive] = await Promise.all([
    Promise.all([
      probe('recordingmetadata', 'rights: GET …/recordingmetadata', () => api.listRecordingMetadata(conv, signal)),
      probe('recordings', 'rights: GET …/recordings/{recordingId}', () => api.getRecording(conv, rec, 'NONE', signal)),
      probe('analytics', 'rights: POST analytics conversation details query', () =>
        api.queryConversationDetails(
          {
            interval: `${new Date(now - 60_000).toISOString()}/${new Date(now).toISOString()}`,
            paging: { pageSize: 1, pageNumber: 1 },
            conversationFilters: [{ type: 'and', predicates: [{ type: 'dimension', dimension: 'conversationId', operator: 'matches', value: conv }] }],
          },
          signal,
        ),
      ),
    ]),
    readViewSensitiveData(api, signal),
  ]);
  checks.push(...probed);
  checks.push({
    id: 'rights.restore',
    label: 'rights: PUT …/recordings/{recordingId} (restore)',
    status: 'skip',
    detail: `not probed: only a real archived recording shows it; restore jobs need one of ${REQUIRED_PERMISSIONS.restoreView.join(', ')} and ${REQUIRED_PERMISSIONS.restore.join(', ')}`,
    data: { requires_any_of: [...REQUIRED_PERMISSIONS.restore], also_requires_any_of: [...REQUIRED_PERMISSIONS.restoreView] },
  });
  checks.push(sensitiveDataCheck(sensitive, deps.viewSensitiveData ?? 'auto'));

  // 4. Media link lifetime (the org's recordingPlaybackUrlTtl, minutes).
  try {
    const s = await api.getRecordingSettings(signal);
    timed.push(s);
    const ttl = s.body.recordingPlaybackUrlTtl;
    if (typeof ttl !== 'number') {
      checks.push({ id: 'media_link_ttl', label: 'media link lifetime', status: 'warn', detail: 'recording settings carry no recordingPlaybackUrlTtl (Genesys default: 60 min)' });
    } else {
      const short = ttl < SHORT_LINK_TTL_MINUTES;
      checks.push({
        id: 'media_link_ttl',
        label: 'media link lifetime',
        status: short ? 'warn' : 'ok',
        detail: short
          ? `media links expire after ${ttl} min (recordingPlaybackUrlTtl, below ${SHORT_LINK_TTL_MINUTES}); downloads outliving a link are resumed with fresh links, at most ${deps.maxResumes} times each`
          : `media links live ${ttl} min (recordingPlaybackUrlTtl)`,
        data: { recording_playback_url_ttl_min: ttl, recording_batch_download_url_ttl_min: s.body.recordingBatchDownloadUrlTtl },
      });
    }
  } catch (e) {
    checks.push({ id: 'media_link_ttl', label: 'media link lifetime', status: 'warn', code: codeOf(e), detail: `could not read the recording settings: ${describe(e)}`, data: { ...extraOf(e) } });
  }

  // 5. Clock skew: the API's Date header against ours (the smallest uncertainty wins).
  const skews = timed.map(skewOf).filter((v): v is NonNullable<typeof v> => v !== undefined);
  const best = skews.sort((a, b) => a.uncertaintyMs - b.uncertaintyMs)[0];
  if (!best) {
    checks.push({ id: 'clock_skew', label: 'clock skew', status: 'warn', detail: 'the API sent no usable Date header' });
  } else {
    const off = Math.abs(best.skewMs) > SKEW_WARN_MS + best.uncertaintyMs;
    checks.push({
      id: 'clock_skew',
      label: 'clock skew',
      status: off ? 'warn' : 'ok',
      detail: `${best.skewMs >= 0 ? 'Genesys is ahead by' : 'Genesys is behind by'} ${(Math.abs(best.skewMs) / 1000).toFixed(1)} s (±${(best.uncertaintyMs / 1000).toFixed(1)} s)${off ? ': fix this host’s time (NTP); retention and restore dates are computed from it' : ''}`,
      data: { skew_ms: best.skewMs, uncertainty_ms: best.uncertaintyMs },
    });
  }

  return { reachable: true, credentials: true, checks };
}

/** The worst status of a report's checks (skip counts as ok). */
export function overallStatus(checks: readonly PreflightCheck[]): 'ok' | 'warn' | 'fail' {
  if (checks.some((c) => c.status === 'fail')) return 'fail';
  if (checks.some((c) => c.status === 'warn')) return 'warn';
  return 'ok';
}
