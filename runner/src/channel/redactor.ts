/** Replaces every secret value an execution has seen with a marker, in text and in JSON. */
export interface Redactor {
  /** Registers a revealed secret value (values shorter than 4 characters are not redacted: too many false hits). */
  add(secret: string): void;
  text(value: string): string;
  /** A deep copy of a JSON value with every string redacted (keys included). */
  json<T>(value: T): T;
}

export const redactionMarker = "[redacted]";

/** Creates an empty redactor for one execution. */
export function createRedactor(): Redactor {
  const secrets = new Set<string>();
  // Longest first, so a secret containing another is replaced whole.
  let ordered: string[] = [];
  const text = (value: string) => {
    let out = value;
    for (const secret of ordered)
      if (out.includes(secret)) out = out.split(secret).join(redactionMarker);
    return out;
  };
  const json = (value: unknown): unknown => {
    if (typeof value === "string") return text(value);
    if (Array.isArray(value)) return value.map(json);
    if (value && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [text(k), json(v)]));
    }
    return value;
  };
  return {
    add(secret) {
      if (secret.length < 4 || secrets.has(secret)) return;
      secrets.add(secret);
      ordered = [...secrets].sort((a, b) => b.length - a.length);
    },
    text,
    json: <T>(value: T) => json(value) as T,
  };
}
