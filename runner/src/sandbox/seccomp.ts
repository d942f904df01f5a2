/**
 * A classic-BPF seccomp filter for the sandbox, handed to bubblewrap with `--seccomp FD`.
 *
 * Its main job is to turn IPv6 off: `socket(AF_INET6, …)` fails with EAFNOSUPPORT. Deno's
 * `--deny-net` cannot express IPv6 ranges, and a declared name resolving to an IPv4-mapped
 * address (`::ffff:127.0.0.1`) reached a loopback service past the IPv4 deny list (measured
 * on 2.9.6), so with the host network shared the only safe IPv6 is none. Dual-stack names
 * still connect over IPv4. It also refuses syscalls the runtime never needs that are common
 * kernel-exploit entry points, and any syscall of a foreign ABI (x32, i386), whose numbers
 * the checks below would not match.
 */

/** CPU architectures the filter knows syscall numbers for. */
export type SeccompArch = "x64" | "arm64";

interface ArchTable {
  auditArch: number;
  socket: number;
  denied: Record<string, number>;
}

const tables: Record<SeccompArch, ArchTable> = {
  x64: {
    auditArch: 0xc000003e,
    socket: 41,
    denied: {
      ptrace: 101,
      init_module: 175,
      kexec_load: 246,
      add_key: 248,
      request_key: 249,
      keyctl: 250,
      perf_event_open: 298,
      process_vm_readv: 310,
      process_vm_writev: 311,
      finit_module: 313,
      bpf: 321,
      userfaultfd: 323,
      io_uring_setup: 425,
      io_uring_enter: 426,
      io_uring_register: 427,
    },
  },
  // asm-generic numbering.
  arm64: {
    auditArch: 0xc00000b7,
    socket: 198,
    denied: {
      kexec_load: 104,
      init_module: 105,
      ptrace: 117,
      add_key: 217,
      request_key: 218,
      keyctl: 219,
      perf_event_open: 241,
      process_vm_readv: 270,
      process_vm_writev: 271,
      finit_module: 273,
      bpf: 280,
      userfaultfd: 282,
      io_uring_setup: 425,
      io_uring_enter: 426,
      io_uring_register: 427,
    },
  },
};

const AF_INET6 = 10;
const EPERM = 1;
const ENOSYS = 38;
const EAFNOSUPPORT = 97;
const X32_SYSCALL_BIT = 0x40000000;

const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const RET_KILL_PROCESS = 0x80000000;

// struct seccomp_data: nr at 0, arch at 4, instruction pointer at 8, args[0] at 16.
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const OFFSET_ARG0_LOW = 16;

const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const RET_K = 0x06;

type Instruction = [code: number, jt: number, jf: number, k: number];

/** The filter for `arch` as the bytes of a `struct sock_filter[]` (little-endian). */
export function seccompFilter(arch: SeccompArch): Buffer {
  const table = tables[arch];
  const denied = Object.values(table.denied);
  const program: Instruction[] = [
    [LD_W_ABS, 0, 0, OFFSET_ARCH],
    [JEQ_K, 1, 0, table.auditArch],
    [RET_K, 0, 0, RET_KILL_PROCESS],
    [LD_W_ABS, 0, 0, OFFSET_NR],
    [JGE_K, 0, 1, X32_SYSCALL_BIT],
    [RET_K, 0, 0, RET_ERRNO | ENOSYS],
    // One test per denied syscall; a match jumps past the rest to the EPERM return.
    ...denied.map((nr, i): Instruction => [JEQ_K, denied.length - i + 1, 0, nr]),
    [JEQ_K, 2, 0, table.socket],
    [RET_K, 0, 0, RET_ALLOW],
    [RET_K, 0, 0, RET_ERRNO | EPERM],
    [LD_W_ABS, 0, 0, OFFSET_ARG0_LOW],
    [JEQ_K, 0, 1, AF_INET6],
    [RET_K, 0, 0, RET_ERRNO | EAFNOSUPPORT],
    [RET_K, 0, 0, RET_ALLOW],
  ];
  const bytes = Buffer.alloc(program.length * 8);
  program.forEach(([code, jt, jf, k], i) => {
    bytes.writeUInt16LE(code, i * 8);
    bytes.writeUInt8(jt, i * 8 + 2);
    bytes.writeUInt8(jf, i * 8 + 3);
    bytes.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return bytes;
}

/** The architecture of this runner, if the filter supports it. */
export function currentSeccompArch(arch: string = process.arch): SeccompArch {
  if (arch === "x64" || arch === "arm64") return arch;
  throw new Error(`no seccomp filter for ${arch}; the sandbox supports x64 and arm64`);
}

/** Names of the syscalls the filter refuses with EPERM (for the docs and tests). */
export function deniedSyscalls(arch: SeccompArch): string[] {
  return Object.keys(tables[arch].denied);
}
