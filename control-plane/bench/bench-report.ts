import { loadavg } from "node:os";
import type { LatencySummary } from "./bench-stats.js";

const labelWidth = 58;

/** Milliseconds, right-aligned, with precision that suits the magnitude. */
export function ms(value: number): string {
  return (
    value < 1 ? value.toFixed(3) : value < 100 ? value.toFixed(2) : value.toFixed(1)
  ).padStart(9);
}

/** An integer with thousands separators. */
export function count(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

/** Prints a section title and the latency column headings. */
export function section(title: string): void {
  console.log(`\n${title}`);
  console.log(`  ${"".padEnd(labelWidth)}   p50 ms    p99 ms   mean ms`);
}

/** Prints one latency row and returns the summary, so callers can keep the figure. */
export function latencyRow(label: string, summary: LatencySummary, note = ""): LatencySummary {
  console.log(
    `  ${label.padEnd(labelWidth)}${ms(summary.p50)} ${ms(summary.p99)} ${ms(summary.mean)}${note ? `   ${note}` : ""}`,
  );
  return summary;
}

/** Prints one throughput row. */
export function rateRow(label: string, opsPerSecond: number, note = ""): void {
  console.log(
    `  ${label.padEnd(labelWidth)}${`${count(opsPerSecond)} ops/s`.padStart(19)}${note ? `   ${note}` : ""}`,
  );
}

/** Prints an indented line of text. */
export function line(text: string): void {
  console.log(`  ${text}`);
}

/** The 1, 5 and 15 minute load averages: other work on the machine skews every figure. */
export function loadAverage(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(" ");
}

/** One target of the issue with the measured figure. */
export interface TargetRow {
  name: string;
  target: string;
  measured: string;
  met: boolean;
}

/** Prints the targets table, PASS or MISS per row. */
export function printTargets(rows: readonly TargetRow[]): void {
  console.log("\nTargets");
  for (const row of rows) {
    line(
      `${row.met ? "PASS" : "MISS"}  ${row.name.padEnd(52)} ${row.target.padEnd(14)} ${row.measured}`,
    );
  }
}
