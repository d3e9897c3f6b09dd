import type { FastifyInstance } from 'fastify';

/** Names the cluster worker that answered: an operator's aid (and the tests' proof that both answer). */
export const WORKER_HEADER = 'X-Custodian-Worker';

/**
 * Adds X-Custodian-Worker: <cluster worker id> to every response of this worker. The id is
 * node:cluster's counter (1, 2, … and up as workers are replaced): no pid, no host name. Set on the
 * raw response at onRequest so that streams, which hijack the reply and write their own head,
 * carry it too (Node merges setHeader into writeHead); and at onSend for answers that never got
 * that far (a refused credential or rate limit ends the onRequest hooks before ours).
 */
export function tagResponses(app: FastifyInstance, workerId: number): void {
  const id = String(workerId);
  app.addHook('onRequest', async (_req, reply) => {
    reply.raw.setHeader(WORKER_HEADER, id);
  });
  app.addHook('onSend', async (_req, reply) => {
    reply.header(WORKER_HEADER, id);
  });
}
