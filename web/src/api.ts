/**
 * The console's only way to the gateway: the same /api/v1 every client uses, with the API key or
 * the OIDC access token (a JWT) as a bearer token. The credential lives in sessionStorage of this
 * tab (gone when the tab closes), never in a URL, a cookie or localStorage, and is never logged.
 */
export interface Who {
  principal: string;
  tenant: string;
  kind: string;
  scopes: string[];
  credential_id: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
  ) {
    super(message);
  }
}

const K_KEY = 'custodian.key';
const K_PURPOSE = 'custodian.purpose';
const K_WHO = 'custodian.who';
const K_SELECTION = 'custodian.selection';
/** 'api_key' or 'oidc', and for OIDC the token's expiry (ms since the epoch). */
const K_VIA = 'custodian.via';
const K_EXPIRES = 'custodian.expires_at';
/** This tab's last user input (ms since the epoch), for the idle logoff (idle.ts); survives a reload. */
const K_ACTIVE = 'custodian.active_at';
export const K_OIDC_PENDING = 'custodian.oidc.pending';

export const session = {
  get key(): string | null {
    return sessionStorage.getItem(K_KEY);
  },
  get purpose(): string {
    return sessionStorage.getItem(K_PURPOSE) ?? '';
  },
  set purpose(v: string) {
    sessionStorage.setItem(K_PURPOSE, v);
  },
  get who(): Who | null {
    const s = sessionStorage.getItem(K_WHO);
    return s ? (JSON.parse(s) as Who) : null;
  },
  can(scope: string): boolean {
    const w = this.who;
    return !!w && (w.scopes.includes(scope) || w.scopes.includes('admin'));
  },
  get via(): 'api_key' | 'oidc' {
    return sessionStorage.getItem(K_VIA) === 'oidc' ? 'oidc' : 'api_key';
  },
  /** When the OIDC access token expires (ms since the epoch); null for API keys. */
  get expiresAt(): number | null {
    const v = Number(sessionStorage.getItem(K_EXPIRES));
    return Number.isFinite(v) && v > 0 ? v : null;
  },
  /** The last user input in this tab (ms since the epoch), or null when none was recorded. */
  get activeAt(): number | null {
    const v = Number(sessionStorage.getItem(K_ACTIVE));
    return Number.isFinite(v) && v > 0 ? v : null;
  },
  markActive(at: number): void {
    if (this.key) sessionStorage.setItem(K_ACTIVE, String(at));
  },
  start(key: string, who: Who, purpose: string, oidc?: { expiresAt: number | null }): void {
    sessionStorage.setItem(K_ACTIVE, String(Date.now()));
    sessionStorage.setItem(K_KEY, key);
    sessionStorage.setItem(K_WHO, JSON.stringify(who));
    sessionStorage.setItem(K_PURPOSE, purpose);
    sessionStorage.setItem(K_VIA, oidc ? 'oidc' : 'api_key');
    if (oidc?.expiresAt) sessionStorage.setItem(K_EXPIRES, String(oidc.expiresAt));
    else sessionStorage.removeItem(K_EXPIRES);
  },
  end(): void {
    for (const k of [K_KEY, K_WHO, K_PURPOSE, K_SELECTION, K_VIA, K_EXPIRES, K_ACTIVE, K_OIDC_PENDING]) sessionStorage.removeItem(k);
  },
};

export interface Selected {
  id: string;
  label: string;
}

export const selection = {
  all(): Selected[] {
    try {
      return JSON.parse(sessionStorage.getItem(K_SELECTION) ?? '[]') as Selected[];
    } catch {
      return [];
    }
  },
  has(id: string): boolean {
    return this.all().some((s) => s.id === id);
  },
  toggle(item: Selected, on: boolean): void {
    const rest = this.all().filter((s) => s.id !== item.id);
    sessionStorage.setItem(K_SELECTION, JSON.stringify(on ? [...rest, item] : rest));
    window.dispatchEvent(new Event('selectionchange-custodian'));
  },
  clear(): void {
    sessionStorage.removeItem(K_SELECTION);
    window.dispatchEvent(new Event('selectionchange-custodian'));
  },
};

/** Called when the gateway says the credential is no longer good. */
let onUnauthorized: (e: ApiError) => void = () => {};
export function setUnauthorizedHandler(f: (e: ApiError) => void): void {
  onUnauthorized = f;
}

export async function request(method: string, path: string, opts: { body?: unknown; key?: string; signal?: AbortSignal; headers?: Record<string, string> } = {}): Promise<Response> {
  const key = opts.key ?? session.key;
  const headers: Record<string, string> = { Accept: 'application/json, application/problem+json, */*', ...opts.headers };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: opts.body === undefined ? null : JSON.stringify(opts.body),
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The gateway cannot be reached.', null);
  }
  if (res.ok) return res;
  let code = `http.${res.status}`;
  let msg = res.statusText || `HTTP ${res.status}`;
  let rid = res.headers.get('X-Request-Id');
  try {
    const p = (await res.json()) as { code?: string; detail?: string; title?: string; request_id?: string };
    code = p.code ?? code;
    msg = p.detail ?? p.title ?? msg;
    rid = p.request_id ?? rid;
  } catch {
    /* not a problem body */
  }
  const err = new ApiError(res.status, code, msg, rid);
  if (res.status === 401 && !opts.key) onUnauthorized(err);
  throw err;
}

export async function json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const res = await request(method, path, { ...(body !== undefined ? { body } : {}), ...(signal ? { signal } : {}) });
  return (await res.json()) as T;
}

export const qs = (o: Record<string, string | number | undefined | null>) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
};

// --- shapes of the API (see /openapi.json) ---
export interface CopyMeta {
  id: string;
  origin: 'GENESYS_CLOUD' | 'LEGACY_ARCHIVE';
  source_system: string;
  storage_location: string | null;
  recording_id: string | null;
  legacy_archive_id: string | null;
  state: string;
  codec: string | null;
  size_bytes: number | null;
  sha256: string | null;
  encryption_status: string | null;
}
export interface RecordingMeta {
  id: string;
  call_id: string | null;
  customer_ref: string | null;
  conversation_id: string | null;
  started_at: string | null;
  retention_expiry: string | null;
  retention_status: 'ACTIVE' | 'EXPIRED' | 'LEGAL_HOLD';
  legal_hold: boolean;
  copies: CopyMeta[];
}
export interface AuditEvent {
  seq: number;
  id: string;
  occurredAt: string;
  tenantId: string | null;
  principalId: string | null;
  principalKind: string | null;
  callerId: string | null;
  action: string;
  ref: string | null;
  recordingPk: string | null;
  origin: string | null;
  outcome: string;
  status: number | null;
  errorCode: string | null;
  bytesSent: number | null;
  sha256: string | null;
  clientIp: string | null;
  relatedEventId: string | null;
  detail: Record<string, unknown> | null;
  hash: string;
  prevHash: string;
}
