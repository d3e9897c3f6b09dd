import type { FastifyContextConfig, RouteOptions } from 'fastify';
import FindMyWay from 'find-my-way';

/** The router options app.ts gives fastify that change which paths match (find-my-way reads the same names). */
export type PathMatchOptions = Pick<FindMyWay.Config<FindMyWay.HTTPVersion.V1>, 'maxParamLength' | 'ignoreTrailingSlash' | 'ignoreDuplicateSlashes' | 'caseSensitive'>;

export interface Allowed {
  /** For the Allow header, sorted: e.g. ['GET', 'HEAD']. */
  methods: string[];
  /** Some route at the path needs a principal: so does learning which methods it takes. */
  auth: boolean;
  /**
   * The recording the path names (`:ref`, decoded as fastify's router decodes it) when every route
   * matching the path reads one, the same: for the record of the refusal (app.ts claimedRef's rule
   * still decides whether it is kept). Undefined when some matching route has no `:ref` (PUT
   * /api/v1/recordings/retrieve is POST …/retrieve as well as GET …/:ref): the path names none for sure.
   */
  ref: string | undefined;
}

interface Store {
  auth: boolean;
}

const noop = (): void => {};

/**
 * fastify sends a known path under a method it has no route for to the not-found handler, exactly
 * like an unknown path, and does not say which methods the path has. This keeps a second
 * find-my-way router — fastify's own router library, built with the same path options — holding
 * every route fastify registers (fed by an onRoute hook, so prefixed plugin routes and the HEAD
 * routes fastify adds for GET are included), so that handler can tell a wrong method (405 with
 * Allow, RFC 9110 §15.5.6) from a path nothing serves (404). Only paths are mirrored: handlers
 * and constraints stay in fastify's router.
 */
export class AllowedMethods {
  private readonly router: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>;
  private readonly methods = new Set<FindMyWay.HTTPMethod>();

  constructor(options: PathMatchOptions = {}) {
    this.router = FindMyWay({ ...options });
  }

  /** For `app.addHook('onRoute', …)`, added before any route. */
  add(route: Pick<RouteOptions, 'method' | 'url' | 'config'>): void {
    const auth = Boolean((route.config as FastifyContextConfig | undefined)?.auth);
    for (const m of [route.method].flat()) {
      const method = m.toUpperCase() as FindMyWay.HTTPMethod;
      // The same method and path twice means routes told apart by constraints: one entry is enough here.
      const known = this.router.findRoute(method, route.url);
      if (known) (known.store as Store).auth ||= auth;
      else this.router.on(method, route.url, noop, { auth } satisfies Store);
      this.methods.add(method);
    }
  }

  /**
   * The methods the request's path takes, when its own method is not one of them; null when no
   * route matches the path under any method (or the path does not decode: fastify refuses those).
   */
  lookup(method: string, url: string): Allowed | null {
    if (this.router.find(method.toUpperCase() as FindMyWay.HTTPMethod, url)) return null;
    const methods: string[] = [];
    let auth = false;
    const refs = new Set<string | undefined>();
    for (const m of this.methods) {
      const hit = this.router.find(m, url);
      if (!hit) continue;
      methods.push(m);
      auth ||= (hit.store as Store).auth;
      refs.add(hit.params.ref);
    }
    const ref = refs.size === 1 ? [...refs][0] : undefined;
    return methods.length ? { methods: methods.sort(), auth, ref } : null;
  }
}
