import { accessSync, constants } from "node:fs";
import { describe, expect, test } from "vitest";
import {
  denoPlatformPackage,
  findExecutable,
  isVersionAtLeast,
  parseLddOutput,
  resolveDenoExecutable,
} from "./deno-binary.js";

describe("deno binary", () => {
  test("resolves the native executable of the platform package, not the npm shim", () => {
    const path = resolveDenoExecutable();
    expect(path).toMatch(/@deno\/linux-(x64|arm64)-glibc\/deno$/);
    expect(() => accessSync(path, constants.X_OK)).not.toThrow();
  });

  test("only Linux on x64 and arm64 has a sandbox build", () => {
    expect(denoPlatformPackage("linux", "x64")).toBe("@deno/linux-x64-glibc");
    expect(denoPlatformPackage("linux", "arm64")).toBe("@deno/linux-arm64-glibc");
    expect(() => denoPlatformPackage("darwin", "arm64")).toThrow("needs Linux");
    expect(() => denoPlatformPackage("linux", "ia32")).toThrow("linux-ia32");
  });

  test("ldd output becomes the loader and library paths, without the vDSO", () => {
    const output = [
      "\tlinux-vdso.so.1 (0x00007ffd)",
      "\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f83)",
      "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f83)",
      "\t/lib64/ld-linux-x86-64.so.2 (0x00007f83)",
    ].join("\n");
    expect(parseLddOutput(output)).toEqual([
      "/lib/x86_64-linux-gnu/libc.so.6",
      "/lib/x86_64-linux-gnu/libdl.so.2",
      "/lib64/ld-linux-x86-64.so.2",
    ]);
    expect(() => parseLddOutput("\tlibfoo.so.1 => not found")).toThrow("missing");
  });

  test("versions compare numerically", () => {
    expect(isVersionAtLeast("2.9.6", "2.8.1")).toBe(true);
    expect(isVersionAtLeast("2.8.1", "2.8.1")).toBe(true);
    expect(isVersionAtLeast("2.8.0", "2.8.1")).toBe(false);
    expect(isVersionAtLeast("2.10.0", "2.9.6")).toBe(true);
    expect(isVersionAtLeast("1.46.3", "2.8.1")).toBe(false);
  });

  test("findExecutable names what is missing", () => {
    expect(findExecutable("sh", "/bin")).toBe("/bin/sh");
    expect(() => findExecutable("no-such-tool-xyz", "/nonexistent")).toThrow(
      "no-such-tool-xyz is not installed",
    );
  });
});
