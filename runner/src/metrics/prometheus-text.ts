/**
 * The value of one series in Prometheus text as scraped, or undefined when it is not there:
 * `series` is the name with its labels exactly as served, `name{a="x",b="y"}`. For checks of
 * what an endpoint serves (the tests of the runner's and the control plane's metrics).
 */
export function seriesValue(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
