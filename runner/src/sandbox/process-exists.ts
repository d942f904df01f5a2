/**
 * Whether a process with this pid exists (signal 0: nothing is sent). EPERM means it exists
 * but belongs to someone else. Used to tell what a runner that is gone left behind.
 */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
