import type { LimitsLogger, ProcessLimits, ResourceLimiter } from "./resource-limits.js";
import {
  type SandboxStarter,
  type StarterNetwork,
  type StarterTools,
  spawnStarter,
} from "./sandbox-starter.js";

/** Starters (sandbox-starter.ts) ready for the sandboxes to come; see `createStarterPool`. */
export interface StarterPool {
  /**
   * A ready starter of `network` (default the host's) whose cgroup has `limits` (one task
   * more, for the starter) and zeroed counters: an idle one, else a new one. Taking one starts
   * a replacement spare.
   */
  take(limits: ProcessLimits, network?: StarterNetwork): Promise<SandboxStarter>;
  /** The networks its starters can have: "own" only with unshare and root (`StarterTools`). */
  readonly networks: readonly StarterNetwork[];
  /**
   * After its run has ended: kills whatever is left in its cgroup, and keeps it for the next
   * sandbox only once nothing but the starter itself is left there; otherwise retires it.
   */
  finish(starter: SandboxStarter): Promise<void>;
  /** The idle starters right now (for inspection). */
  waiting(): readonly SandboxStarter[];
  /** Kills every starter (and what it started) and removes the pooled cgroups. */
  close(): Promise<void>;
}

/**
 * Keeps `spares` starters of each network idle and ready, each in a cgroup of its own, and
 * reuses each for sandbox after sandbox, of its network only. A sandbox therefore costs one fork of a small shell and the exec of
 * bubblewrap: no fork of the runner, no cgroup move, no change of uid. Reuse needs cgroups: only
 * an empty cgroup proves that nothing of the previous sandbox is left to write into the next
 * one's output, so without them (or with `reuse: false`) a starter serves a single sandbox.
 */
export function createStarterPool(options: {
  tools: StarterTools;
  limiter: ResourceLimiter;
  logger: LimitsLogger;
  /** The directory starters work in (see `spawnStarter`). */
  dir: string;
  /**
   * Starters of each network kept idle and ready (0: one is started for each sandbox that
   * needs one).
   */
  spares: number;
  /** The limits spares are prepared with (a take applies its own anyway). */
  limits: ProcessLimits;
  /** Reuse a starter whose cgroup emptied (default true). */
  reuse?: boolean;
}): StarterPool {
  const networks: StarterNetwork[] =
    options.tools.unsharePath === null ? ["host"] : ["host", "own"];
  const idle: Record<StarterNetwork, SandboxStarter[]> = { host: [], own: [] };
  const all = new Set<SandboxStarter>();
  const creating: Record<StarterNetwork, number> = { host: 0, own: 0 };
  let closed = false;
  const reuse = options.reuse ?? true;
  const { limiter } = options;

  const retire = async (starter: SandboxStarter) => {
    starter.kill();
    all.delete(starter);
    await limiter.release(starter.cgroup);
  };

  const create = async (limits: ProcessLimits, network: StarterNetwork) => {
    const cgroup = await limiter.acquire(withStarter(limits));
    const starter = spawnStarter(options.tools, cgroup, options.dir, { network });
    all.add(starter);
    try {
      await starter.ready;
    } catch (error) {
      await retire(starter);
      throw error;
    }
    return starter;
  };

  const refill = () => {
    for (const network of networks) {
      while (!closed && idle[network].length + creating[network] < options.spares) {
        creating[network]++;
        create(options.limits, network)
          .then((starter) => {
            if (closed) void retire(starter);
            else idle[network].push(starter);
          })
          .catch((error: unknown) =>
            options.logger.warn({ err: error, network }, "could not prepare a sandbox starter"),
          )
          .finally(() => {
            creating[network]--;
          });
      }
    }
  };

  refill();
  return {
    networks,
    async take(limits, network = "host") {
      if (!networks.includes(network)) {
        throw new Error(
          `no sandbox starter can have a network of its own here (no unshare or not root)`,
        );
      }
      for (let starter = idle[network].pop(); starter; starter = idle[network].pop()) {
        if (starter.exited) {
          void retire(starter);
          continue;
        }
        try {
          await starter.cgroup.applyLimits(withStarter(limits));
          await starter.cgroup.resetCounters();
        } catch (error) {
          options.logger.warn({ err: error }, "a sandbox starter's cgroup could not be reset");
          void retire(starter);
          continue;
        }
        refill();
        return starter;
      }
      const starter = await create(limits, network);
      refill();
      return starter;
    },
    async finish(starter) {
      const reusable = reuse && !closed && !starter.exited && starter.cgroup.procsFiles.length > 0;
      if (!reusable) return retire(starter);
      // Draining kills whatever is left but the starter, and waits until it is gone.
      if (await starter.cgroup.drain({ keep: starter.pid })) {
        if (closed || starter.exited) await retire(starter);
        else idle[starter.network].push(starter);
        return;
      }
      options.logger.warn(
        { cgroup: starter.cgroup.procsFiles },
        "a sandbox's cgroup still has tasks 2 s after it ended: its starter is retired",
      );
      await retire(starter);
    },
    waiting: () => [...idle.host, ...idle.own],
    async close() {
      closed = true;
      idle.host.length = 0;
      idle.own.length = 0;
      await Promise.all([...all].map(retire));
      await limiter.close();
    },
  };
}

/** The cgroup limits of a sandbox plus the resident starter: one task more. */
function withStarter(limits: ProcessLimits): ProcessLimits {
  return { ...limits, tasks: limits.tasks + 1 };
}
