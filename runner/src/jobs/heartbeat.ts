import type { ControlPlaneClient } from "../control-plane-client.js";

/** Stops the heartbeat. */
export interface Heartbeat {
  stop(): void;
}

/**
 * Announces the runner (name, capacity, current load) now and every `everyMs`, so operators
 * can list runners and see which are alive. A failed beat is reported and retried next time.
 */
export function startHeartbeat(options: {
  client: ControlPlaneClient;
  runnerName: string;
  capacity: number;
  inFlight: () => number;
  everyMs: number;
  version?: string;
  onError?: (error: unknown) => void;
}): Heartbeat {
  const beat = () =>
    options.client
      .runnerHeartbeat({
        runnerName: options.runnerName,
        capacity: options.capacity,
        inFlight: options.inFlight(),
        version: options.version ?? "",
      })
      .catch((error: unknown) => options.onError?.(error));
  void beat();
  const timer = setInterval(() => void beat(), options.everyMs);
  return { stop: () => clearInterval(timer) };
}
