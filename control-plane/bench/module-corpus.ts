const topLevels = [
  "shared",
  "workflows",
  "integrations",
  "lib",
  "reports",
  "forms",
  "agents",
  "data",
] as const;

/** The path of global module `i`: spread over top-level folders and 50 groups each, like a real tree. */
export function modulePath(i: number): string {
  const top = topLevels[i % topLevels.length] as string;
  const group = `g${String(Math.floor(i / topLevels.length) % 50).padStart(2, "0")}`;
  return `${top}/${group}/module-${String(i).padStart(5, "0")}.ts`;
}

/**
 * Plausible TypeScript of 1–2 KB, unique per (path, variant): imports, a typed client and a
 * handler, with a body length that varies by module so sizes spread over the range.
 */
export function moduleContent(i: number, variant: string): string {
  const name = `Module${i}`;
  const lines = [
    `// ${modulePath(i)} (${variant})`,
    `import { workflow, config, secrets } from "bifrost";`,
    `import { httpJson } from "shared/g00/module-00000.ts";`,
    "",
    `export interface ${name}Options {`,
    "  tenantId: string;",
    "  baseUrl: string;",
    "  timeoutMs?: number;",
    "}",
    "",
    `export class ${name}Client {`,
    `  constructor(private readonly options: ${name}Options) {}`,
    "",
    "  async listTickets(status: string): Promise<unknown[]> {",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: generated source holds a template literal
    "    const url = `${this.options.baseUrl}/api/tickets?status=${encodeURIComponent(status)}`;",
    `    const token = await secrets.get("${variant}-token-${i}");`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: generated source holds a template literal
    "    return httpJson(url, { headers: { authorization: `Bearer ${token}` } });",
    "  }",
    "}",
    "",
  ];
  const extraSteps = 4 + (i % 12);
  lines.push(`export default workflow("${variant}-${i}", async (ctx) => {`);
  lines.push(`  const client = new ${name}Client(await config.get("halo-${i % 17}"));`);
  for (let step = 0; step < extraSteps; step++) {
    lines.push(`  const step${step} = await client.listTickets("state-${step}");`);
    lines.push(`  ctx.log.info("step ${step} of ${name}", { count: step${step}.length });`);
  }
  lines.push("  return { ok: true };", "});", "");
  return lines.join("\n");
}
