import { afterAll, describe, expect, test } from "vitest";
import { type MetricsServer, startMetricsServer } from "./metrics-server.js";
import { seriesValue as sample } from "./prometheus-text.js";
import { createRunnerMetrics } from "./runner-metrics.js";

const servers: MetricsServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

describe("runner metrics", () => {
  test("count outcomes by status and error kind, sandbox starts by how, and slots", async () => {
    let busy = 1;
    const metrics = createRunnerMetrics({ capacity: 3, busy: () => busy });
    metrics.finished({ status: "succeeded", started: "prepared", heldMs: 40, sandboxMs: 20 });
    metrics.finished({ status: "succeeded", started: "early", heldMs: 60, sandboxMs: 30 });
    metrics.finished({
      status: "failed",
      errorKind: "user",
      started: "after_claim",
      heldMs: 80,
      sandboxMs: 50,
    });
    metrics.finished({
      status: "timed_out",
      errorKind: "timeout",
      started: "prepared",
      heldMs: 2000,
      sandboxMs: 1990,
    });
    metrics.finished({ status: "failed", errorKind: "invalid_network", heldMs: 5, sandboxMs: 0 });
    metrics.notClaimed();
    metrics.handlerFailed();
    metrics.handlerFailed();
    busy = 2;
    const text = await metrics.registry.metrics();
    const executions = (status: string, reason: string) =>
      sample(text, `bifrost_runner_executions_total{status="${status}",reason="${reason}"}`);
    expect(executions("succeeded", "none")).toBe(2);
    expect(executions("failed", "user")).toBe(1);
    expect(executions("failed", "invalid_network")).toBe(1);
    expect(executions("timed_out", "timeout")).toBe(1);
    expect(sample(text, 'bifrost_runner_sandbox_starts_total{how="prepared"}')).toBe(2);
    expect(sample(text, 'bifrost_runner_sandbox_starts_total{how="early"}')).toBe(1);
    expect(sample(text, 'bifrost_runner_sandbox_starts_total{how="after_claim"}')).toBe(1);
    // The refused execution ran no sandbox: four sandbox durations, five held durations.
    expect(sample(text, "bifrost_runner_sandbox_duration_seconds_count")).toBe(4);
    expect(
      sample(text, 'bifrost_runner_execution_duration_seconds_count{status="succeeded"}'),
    ).toBe(2);
    expect(
      sample(
        text,
        'bifrost_runner_execution_duration_seconds_bucket{le="0.05",status="succeeded"}',
      ),
    ).toBe(1);
    expect(sample(text, "bifrost_runner_jobs_not_claimed_total")).toBe(1);
    expect(sample(text, "bifrost_runner_job_failures_total")).toBe(2);
    expect(sample(text, "bifrost_runner_slots")).toBe(3);
    expect(sample(text, "bifrost_runner_slots_busy")).toBe(2);
    // Node's process metrics, under the runner's prefix.
    expect(text).toContain("bifrost_runner_process_cpu_seconds_total");
    expect(text).toContain("bifrost_runner_nodejs_eventloop_lag_seconds");
  });

  test("an error kind the sandbox made up is counted as other, never as a label of its own", async () => {
    const metrics = createRunnerMetrics({ capacity: 1, busy: () => 0 });
    for (let i = 0; i < 50; i++) {
      metrics.finished({
        status: "failed",
        errorKind: `forged-${i}-org-a-secret`,
        started: "prepared",
        heldMs: 10,
        sandboxMs: 5,
      });
    }
    const text = await metrics.registry.metrics();
    expect(sample(text, 'bifrost_runner_executions_total{status="failed",reason="other"}')).toBe(
      50,
    );
    expect(text).not.toContain("forged");
  });

  test("follow the sandboxes prepared ahead: waiting now, started and discarded since start", async () => {
    const stats = { taken: 0, missed: 0, prepared: 0, discarded: 0 };
    let idle = 0;
    const metrics = createRunnerMetrics({
      capacity: 2,
      busy: () => 0,
      prepared: { idle: () => idle, stats: () => stats },
    });
    const read = async () => {
      const text = await metrics.registry.metrics();
      return [
        sample(text, "bifrost_runner_prepared_sandboxes_idle"),
        sample(text, "bifrost_runner_prepared_sandboxes_prepared_total"),
        sample(text, "bifrost_runner_prepared_sandboxes_discarded_total"),
      ];
    };
    expect(await read()).toEqual([0, 0, 0]);
    Object.assign(stats, { prepared: 5, discarded: 1 });
    idle = 2;
    expect(await read()).toEqual([2, 5, 1]);
    Object.assign(stats, { prepared: 7 });
    idle = 1;
    expect(await read()).toEqual([1, 7, 1]);
  });

  test("two runners in one process keep separate counts", async () => {
    const a = createRunnerMetrics({ capacity: 1, busy: () => 0 });
    const b = createRunnerMetrics({ capacity: 1, busy: () => 0 });
    a.finished({ status: "succeeded", started: "prepared", heldMs: 1, sandboxMs: 1 });
    expect(
      sample(
        await a.registry.metrics(),
        'bifrost_runner_executions_total{status="succeeded",reason="none"}',
      ),
    ).toBe(1);
    expect(
      sample(
        await b.registry.metrics(),
        'bifrost_runner_executions_total{status="succeeded",reason="none"}',
      ),
    ).toBe(0);
  });
});

describe("the metrics endpoint", () => {
  test("serves GET /metrics as Prometheus text, and nothing else", async () => {
    const metrics = createRunnerMetrics({ capacity: 2, busy: () => 0 });
    const server = await startMetricsServer(metrics.registry, "127.0.0.1:0");
    servers.push(server);
    const base = `http://${server.address}`;
    const ok = await fetch(`${base}/metrics`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toContain("text/plain");
    expect(sample(await ok.text(), "bifrost_runner_slots")).toBe(2);
    const head = await fetch(`${base}/metrics`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics/../admin`)).status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });

  test("a port in use is refused at start, naming the address", async () => {
    const metrics = createRunnerMetrics({ capacity: 1, busy: () => 0 });
    const first = await startMetricsServer(metrics.registry, "127.0.0.1:0");
    servers.push(first);
    const port = Number(first.address.split(":").pop());
    await expect(startMetricsServer(metrics.registry, `127.0.0.1:${port}`)).rejects.toThrow(
      `cannot serve metrics on 127.0.0.1:${port}: listen EADDRINUSE`,
    );
  });
});
