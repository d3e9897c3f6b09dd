import { setFlagsFromString } from 'node:v8';

/**
 * Sets how far V8 lets the old generation grow past what a full GC left alive before it starts
 * the next one (server.heap_growing_percent; 0 hands the choice back to V8).
 *
 * Why: V8 sizes that headroom from how fast its last collections were. Streaming is cheap to
 * collect, so under load it settled on ~20 % — with ~33 MB live, a limit ~25 MB above it, which
 * is less than the young generation (two 16 MB semi-spaces) can promote between scavenges, so
 * incremental marking restarted after almost every scavenge: a full mark-compact every ~350 ms
 * at 200 small retrievals a second (--trace-gc), each with 5–20 ms of marking steps on the
 * event loop and its helper threads on the other core. A fixed headroom turns those into a few a
 * second or fewer (docs/BENCHMARKS.md has the measurements).
 *
 * V8 reads the flag each time it recomputes the limit (after every full GC), so setting it after
 * start takes effect (checked: its --trace-gc-verbose "Limit" lines show the factor); it is
 * process-wide, like the heap.
 */
export function applyHeapGrowth(percent: number): void {
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}
