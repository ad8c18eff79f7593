// Waits for a condition that the system reaches asynchronously (RBAC caches, watches), failing
// with the last error if it is not reached in time. Not a retry of flaky assertions: callers
// poll for a state, then assert on it.
export async function eventually<T>(probe: () => Promise<T>, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await probe();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
