import { ExecutionStatus } from "@bifrost/proto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createTestRepository, type TestRepository } from "../testing/git-fixtures.js";
import type { ApiClients } from "../testing/grpc-clients.js";
import { startTestControlPlane, type TestControlPlane } from "../testing/harness.js";
import { type InProcessRunner, startInProcessRunner } from "../testing/in-process-runner.js";
import { createTenancyWorld, type TenancyWorld } from "../testing/tenancy-world.js";
import { globalScope, orgScope } from "../testing/wire.js";

let cp: TestControlPlane;
let world: TenancyWorld;
let root: ApiClients;
let runner: InProcessRunner;
const repositories: TestRepository[] = [];

beforeAll(async () => {
  cp = await startTestControlPlane();
  world = await createTenancyWorld(cp);
  root = world.as(world.keys.platformAdmin);
  runner = await startInProcessRunner(cp, root, { name: "git-runner" });
});

afterAll(async () => {
  await runner?.stop();
  await cp?.close();
  for (const repository of repositories) await repository.remove();
});

async function bindAndSync(scope: ReturnType<typeof orgScope>, repo: TestRepository) {
  const { binding } = await root.git.bindRepository({
    scope,
    repositoryUrl: repo.url,
    branch: "main",
    subfolder: "",
    credential: undefined,
    pollIntervalSeconds: 0,
  });
  const id = binding?.id as string;
  await root.git.syncGitBinding({ id });
  return id;
}

async function run(organizationId: string): Promise<unknown> {
  const { execution } = await root.executions.startExecution({
    organizationId,
    workflow: "which_halo",
    params: {},
    waitForResult: true,
    waitTimeoutSeconds: 60,
  });
  expect(execution?.status, JSON.stringify(execution?.error)).toBe(
    ExecutionStatus.EXECUTION_STATUS_SUCCEEDED,
  );
  return execution?.result;
}

test("executions use the organization's bound repository, others the global one, and see each push after its sync", async () => {
  const globalRepo = await createTestRepository();
  const orgRepo = await createTestRepository();
  repositories.push(globalRepo, orgRepo);
  await globalRepo.commit({
    "shared/halopsa.ts": 'export const base = "global";\n',
    // A workspace-path import and a relative one: both resolve to the org's effective file.
    "workflows/which.ts": [
      'import { workflow } from "bifrost";',
      'import { base } from "shared/halopsa.ts";',
      'import { base as relative } from "../shared/halopsa.ts";',
      'export const which = workflow({ name: "which_halo" }, () => ({ base, relative }));',
      "",
    ].join("\n"),
  });
  await orgRepo.commit({ "shared/halopsa.ts": 'export const base = "org A";\n' });
  const globalBinding = await bindAndSync(globalScope, globalRepo);
  const orgBinding = await bindAndSync(orgScope(world.orgA.id), orgRepo);
  await cp.discovery.drain();

  expect(await run(world.orgA.id)).toEqual({ base: "org A", relative: "org A" });
  expect(await run(world.orgB.id)).toEqual({ base: "global", relative: "global" });

  await orgRepo.commit({ "shared/halopsa.ts": 'export const base = "org A, pushed";\n' });
  await root.git.syncGitBinding({ id: orgBinding });
  expect(await run(world.orgA.id)).toEqual({ base: "org A, pushed", relative: "org A, pushed" });
  expect(await run(world.orgB.id)).toEqual({ base: "global", relative: "global" });

  await globalRepo.commit({ "shared/halopsa.ts": 'export const base = "global, pushed";\n' });
  await root.git.syncGitBinding({ id: globalBinding });
  expect(await run(world.orgC.id)).toEqual({ base: "global, pushed", relative: "global, pushed" });
  expect(await run(world.orgA.id)).toEqual({ base: "org A, pushed", relative: "org A, pushed" });

  // The org's repository drops its override: A falls back to the global file.
  await orgRepo.commit({ "shared/halopsa.ts": null, "README.ts": "export {};\n" });
  await root.git.syncGitBinding({ id: orgBinding });
  expect(await run(world.orgA.id)).toEqual({ base: "global, pushed", relative: "global, pushed" });
});
