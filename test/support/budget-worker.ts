/**
 * A node:cluster worker for test/cluster-budget.test.ts: takes `takes` slots of one shared source
 * budget (clusterBudgetStore, kept by the primary) and reports when each was granted.
 */
import { clusterBudgetStore } from '../../src/sources/request-budget.js';

const { max, windowMs, takes, t0 } = JSON.parse(process.env.BUDGET_TEST!) as { max: number; windowMs: number; takes: number; t0: number };
const budget = clusterBudgetStore().budget('genesys:https://api.example:client-1', max, windowMs);
const granted: number[] = [];
for (let i = 0; i < takes; i++) {
  await budget.take(AbortSignal.timeout(10_000));
  granted.push(Date.now() - t0);
}
process.send!({ granted }, () => process.exit(0));
