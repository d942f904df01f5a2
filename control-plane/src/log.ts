import { type Logger, pino } from "pino";

export type { Logger };

/**
 * The root structured logger (JSON lines on stdout). Request and job loggers are children
 * of it with their ids as fields. Secrets, SQL parameters and API keys are never logged;
 * the redact paths are a second line of defence for fields that might carry them.
 */
export function createLogger(options: { level: string; name: string }): Logger {
  return pino({
    name: options.name,
    level: options.level,
    redact: {
      paths: ["authorization", "*.authorization", "secret", "*.secret", "value", "*.value"],
      censor: "[redacted]",
    },
  });
}
