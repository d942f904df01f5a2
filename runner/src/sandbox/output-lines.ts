import { StringDecoder } from "node:string_decoder";

/** Which stream of the sandboxed process a line came from. */
export type OutputStream = "stdout" | "stderr";

/** Caps on what one process may print; past them output is dropped, never buffered. */
export interface OutputLimits {
  /** Lines forwarded, both streams together. */
  maxLines: number;
  /** Bytes read, both streams together, counted before stripping. */
  maxBytes: number;
  /** Longest line forwarded, in bytes; the rest of a longer line is dropped. */
  maxLineBytes: number;
  /**
   * Bytes that may still arrive after the caps are reached before the process is killed:
   * draining a flood forever would cost the runner CPU for the whole timeout.
   */
  floodBytes: number;
}

/** Defaults for one execution's log output. */
export const defaultOutputLimits: OutputLimits = {
  maxLines: 10_000,
  maxBytes: 4 * 1024 * 1024,
  maxLineBytes: 16 * 1024,
  floodBytes: 64 * 1024 * 1024,
};

// CSI/OSC escape sequences first (so no "[31m" residue is left), then every other C0/C1
// control character except tab, and the bidi overrides that can make a log line read as
// something else ("Trojan Source").
const escapeSequence =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  /\u001b(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|[@-Z\\-_])/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
const controlCharacter = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** Removes terminal escapes, control characters (tab stays) and bidi overrides. */
export function stripControlCharacters(text: string): string {
  return text.replace(escapeSequence, "").replace(controlCharacter, "");
}

/**
 * Splits the raw bytes of both streams into lines and forwards them, stripped, through
 * `onLine`, until a cap is reached; after that it only counts. `push` returns false once the
 * flood allowance is spent too: the caller should kill the process.
 */
export interface OutputSink {
  push(stream: OutputStream, chunk: Buffer): boolean;
  /** Flushes each stream's unterminated last line. */
  end(stream: OutputStream): void;
  readonly truncated: boolean;
  readonly flooded: boolean;
}

/** Creates the sink for one process. */
export function createOutputSink(
  limits: OutputLimits,
  onLine: (stream: OutputStream, line: string) => void,
): OutputSink {
  let bytes = 0;
  let lines = 0;
  let truncated = false;
  let flooded = false;
  const state = {
    stdout: { decoder: new StringDecoder("utf8"), pending: "", pendingBytes: 0, cut: false },
    stderr: { decoder: new StringDecoder("utf8"), pending: "", pendingBytes: 0, cut: false },
  };

  const emit = (stream: OutputStream, line: string) => {
    if (lines >= limits.maxLines) {
      truncated = true;
      return;
    }
    lines++;
    onLine(stream, stripControlCharacters(line.endsWith("\r") ? line.slice(0, -1) : line));
  };

  const take = (stream: OutputStream, text: string) => {
    const s = state[stream];
    let rest = text;
    for (;;) {
      const newline = rest.indexOf("\n");
      const piece = newline === -1 ? rest : rest.slice(0, newline);
      if (!s.cut) {
        const room = limits.maxLineBytes - s.pendingBytes;
        const pieceBytes = Buffer.byteLength(piece);
        if (pieceBytes <= room) {
          s.pending += piece;
          s.pendingBytes += pieceBytes;
        } else {
          // Cut on a character boundary; the rest of this line is dropped.
          s.pending += Buffer.from(piece)
            .subarray(0, room)
            .toString("utf8")
            .replace(/\uFFFD$/, "");
          s.pending += " …[line truncated]";
          s.cut = true;
          truncated = true;
        }
      }
      if (newline === -1) return;
      emit(stream, s.pending);
      s.pending = "";
      s.pendingBytes = 0;
      s.cut = false;
      rest = rest.slice(newline + 1);
    }
  };

  return {
    push(stream, chunk) {
      const allowed = Math.max(0, limits.maxBytes - bytes);
      bytes += chunk.length;
      if (chunk.length > allowed) truncated = true;
      if (lines >= limits.maxLines) truncated ||= chunk.length > 0;
      else if (allowed > 0) take(stream, state[stream].decoder.write(chunk.subarray(0, allowed)));
      if (bytes > limits.maxBytes + limits.floodBytes) flooded = true;
      return !flooded;
    },
    end(stream) {
      const s = state[stream];
      const tail = s.decoder.end();
      if (tail && bytes <= limits.maxBytes) take(stream, tail);
      if (s.pending !== "" || s.cut) emit(stream, s.pending);
      s.pending = "";
      s.pendingBytes = 0;
      s.cut = false;
    },
    get truncated() {
      return truncated;
    },
    get flooded() {
      return flooded;
    },
  };
}
