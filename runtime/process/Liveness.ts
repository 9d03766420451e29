/**
 * Whether a process id names a live process (signal 0). EPERM means it lives
 * but belongs to another user, e.g. postgres when the node runs as root.
 */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}
