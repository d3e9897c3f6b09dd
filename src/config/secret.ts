import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * A resolved secret. It cannot leak through logs or JSON by accident: printing it, serialising
 * it or interpolating it yields "[secret]"; only `reveal()` gives the value, at the one place
 * that sends it to its own source.
 */
export class Secret {
  readonly #value: string;
  readonly source: string;
  constructor(value: string, source: string) {
    this.#value = value;
    this.source = source;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[secret]';
  }
  toJSON(): string {
    return '[secret]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `Secret(${this.source})`;
  }
}

export interface SecretContext {
  env: Record<string, string | undefined>;
  /** Inline secret values are refused unless allowed (demo and tests only). */
  allowInline: boolean;
}

/**
 * `env:NAME` reads an environment variable, `file:/path` reads a file (trailing newline removed),
 * anything else is an inline literal, accepted only where the config allows it.
 */
export function resolveSecret(ref: string, ctx: SecretContext): { ok: true; secret: Secret } | { ok: false; message: string } {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const value = ctx.env[name];
    if (value === undefined || value === '') return { ok: false, message: `environment variable ${name} is not set` };
    return { ok: true, secret: new Secret(value, ref) };
  }
  if (ref.startsWith('file:')) {
    const path = ref.slice(5);
    try {
      const value = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
      if (value === '') return { ok: false, message: `secret file ${path} is empty` };
      return { ok: true, secret: new Secret(value, ref) };
    } catch (e) {
      return { ok: false, message: `secret file ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
    }
  }
  if (!ctx.allowInline) {
    return { ok: false, message: 'inline secrets are not allowed; use env:NAME or file:/path (or set allow_inline_secrets for demos)' };
  }
  return { ok: true, secret: new Secret(ref, 'inline') };
}

/** Holder for the context while one config document is parsed (parsing is synchronous). */
let current: SecretContext | undefined;

export function withSecretContext<T>(ctx: SecretContext, fn: () => T): T {
  const prev = current;
  current = ctx;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/** zod type for a secret reference field: validates and resolves in one pass, naming the field on error. */
export const secretRef = () =>
  z.string().min(1).transform((ref, ctx) => {
    if (!current) {
      ctx.addIssue({ code: 'custom', message: 'secret resolved outside config loading' });
      return z.NEVER;
    }
    const r = resolveSecret(ref, current);
    if (!r.ok) {
      ctx.addIssue({ code: 'custom', message: r.message });
      return z.NEVER;
    }
    return r.secret;
  });
