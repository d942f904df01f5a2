import type { SandboxView } from "./sandbox-view.js";

/** Reads an organization's sandbox view for boot hints, from memory while it is fresh. */
export interface BootHintViews {
  get(organizationId: string): Promise<SandboxView>;
  /** Forgets every view (after a module write through this process). */
  clear(): void;
}

/**
 * A job's boot hint only lets a runner start the sandbox early; the claim reads the view
 * again and a sandbox whose boot differs is never used (runner/src/execute/prepared-sandboxes.ts).
 * So a hint may be slightly stale, and a view read for one start serves the next ones for
 * `ttlMs`: under load that takes the view's statements off every StartExecution. Concurrent
 * starts of one organization share one read; a failed read is not kept.
 */
export function createBootHintViews(
  read: (organizationId: string) => Promise<SandboxView>,
  options: { ttlMs: number; maxOrganizations?: number; now?: () => number },
): BootHintViews {
  const now = options.now ?? Date.now;
  const max = options.maxOrganizations ?? 10_000;
  const views = new Map<string, { at: number; view: Promise<SandboxView> }>();
  return {
    get(organizationId) {
      const known = views.get(organizationId);
      if (known && now() - known.at < options.ttlMs) return known.view;
      // Bounded: an idle organization's view is dropped with the rest when the map is full.
      if (views.size >= max) views.clear();
      const view = read(organizationId);
      const entry = { at: now(), view };
      views.set(organizationId, entry);
      view.catch(() => {
        if (views.get(organizationId) === entry) views.delete(organizationId);
      });
      return view;
    },
    clear() {
      views.clear();
    },
  };
}
