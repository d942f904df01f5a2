import { describe, expect, test } from "vitest";
import { findCgroupMounts } from "./cgroups.js";
import { deniedSyscalls, seccompFilter } from "./seccomp.js";

const mountinfo = [
  "25 1 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755",
  "30 25 0:26 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
  "31 25 0:27 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
  "32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
  "33 25 0:29 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
  "40 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw",
].join("\n");

describe("findCgroupMounts", () => {
  test("maps each v1 controller and the unified hierarchy to this process's cgroup", () => {
    const self = ["4:memory:/runner/abc", "8:pids:/", "2:cpu,cpuacct:/", "0::/user.slice"].join(
      "\n",
    );
    expect(findCgroupMounts(mountinfo, self)).toEqual({
      memoryV1: "/sys/fs/cgroup/memory/runner/abc",
      pidsV1: "/sys/fs/cgroup/pids",
      unified: "/sys/fs/cgroup/unified/user.slice",
    });
  });

  test("a pure v2 host has only the unified hierarchy", () => {
    const v2 = "29 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";
    expect(findCgroupMounts(v2, "0::/system.slice/runner.service")).toEqual({
      unified: "/sys/fs/cgroup/system.slice/runner.service",
    });
  });

  test("a mount of a sub-tree (cgroup namespace) is resolved relative to its root", () => {
    const nested = "30 25 0:26 /docker/c1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";
    expect(findCgroupMounts(nested, "4:memory:/docker/c1/runner")).toEqual({
      memoryV1: "/sys/fs/cgroup/memory/runner",
    });
  });
});

describe("seccompFilter", () => {
  test("is a whole number of 8-byte instructions that starts by checking the architecture", () => {
    const program = seccompFilter("x64");
    expect(program.length % 8).toBe(0);
    expect(program.readUInt16LE(0)).toBe(0x20);
    expect(program.readUInt32LE(4)).toBe(4);
    expect(program.readUInt32LE(12)).toBe(0xc000003e);
    expect(seccompFilter("arm64").readUInt32LE(12)).toBe(0xc00000b7);
  });

  test("every jump lands inside the program and it ends by allowing", () => {
    for (const arch of ["x64", "arm64"] as const) {
      const program = seccompFilter(arch);
      const count = program.length / 8;
      for (let i = 0; i < count; i++) {
        if ((program.readUInt16LE(i * 8) & 0x07) !== 0x05) continue;
        expect(i + 1 + program.readUInt8(i * 8 + 2)).toBeLessThan(count);
        expect(i + 1 + program.readUInt8(i * 8 + 3)).toBeLessThan(count);
      }
      expect(program.readUInt32LE(program.length - 4)).toBe(0x7fff0000);
      expect(deniedSyscalls(arch)).toContain("io_uring_setup");
    }
  });
});
