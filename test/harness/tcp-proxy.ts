// A TCP proxy on loopback that tests put between a client and the apiserver, to cut, blackhole or
// slow the path on demand. TLS passes through untouched (the apiserver's cert names 127.0.0.1).
import { connect, createServer, type Server, type Socket } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';

export type ProxyMode = 'pass' | 'blackhole' | 'refuse' | 'stall';

export class TcpProxy {
  readonly port: number;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private mode: ProxyMode = 'pass';
  /** Milliseconds added before each chunk is forwarded. */
  delayMs = 0;
  /** Chunks held by stall(), in arrival order, with the write that delivers each. */
  private held: Array<() => void> = [];
  private readonly onRequestHeld = new Set<() => void>();

  private constructor(server: Server, port: number) {
    this.server = server;
    this.port = port;
  }

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy!.accept(client, targetHost, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const address = server.address();
    proxy = new TcpProxy(server, typeof address === 'object' && address ? address.port : 0);
    return proxy;
  }

  /** A copy of `kubeconfigPath` whose cluster server goes through this proxy. */
  kubeconfig(kubeconfigPath: string, outputPath: string): string {
    const config = JSON.parse(readFileSync(kubeconfigPath, 'utf8')) as { clusters: Array<{ cluster: { server: string } }> };
    for (const entry of config.clusters) entry.cluster.server = entry.cluster.server.replace(/:\d+$/, `:${this.port}`);
    writeFileSync(outputPath, JSON.stringify(config), { mode: 0o600 });
    return outputPath;
  }

  /** Nothing gets through and nothing is answered: requests hang, as behind a dead link. */
  blackhole(): void {
    this.mode = 'blackhole';
    for (const socket of this.sockets) socket.pause();
  }

  /** Connections are reset at once, as when the apiserver is down. */
  refuse(): void {
    this.mode = 'refuse';
    this.dropAll();
  }

  /**
   * Connections stay open but nothing is forwarded either way: every chunk is held, to be delivered
   * in order by restore(). A request sent now is in flight — it has left the client and not yet
   * reached the apiserver — until then.
   */
  stall(): void {
    this.mode = 'stall';
  }

  /** Resolves when a client sends a chunk that stall() holds (true), or after timeoutMs (false). */
  requestHeld(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (held: boolean): void => {
        clearTimeout(timer);
        this.onRequestHeld.delete(onHeld);
        resolve(held);
      };
      const onHeld = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.onRequestHeld.add(onHeld);
    });
  }

  /** Back to normal; connections held by a blackhole are reset so clients reconnect, chunks held by a stall are delivered. */
  restore(): void {
    if (this.mode === 'blackhole') this.dropAll();
    this.mode = 'pass';
    const held = this.held;
    this.held = [];
    for (const write of held) write();
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private dropAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.held = [];
  }

  private accept(client: Socket, host: string, port: number): void {
    if (this.mode === 'refuse') return void client.destroy();
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => {});
    if (this.mode === 'blackhole') return void client.pause();
    const upstream = connect(port, host);
    this.sockets.add(upstream);
    upstream.on('close', () => { this.sockets.delete(upstream); client.destroy(); });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    this.forward(client, upstream, true);
    this.forward(upstream, client, false);
  }

  private forward(from: Socket, to: Socket, request: boolean): void {
    from.on('data', (chunk) => {
      if (this.mode === 'blackhole') return;
      if (this.mode === 'stall') {
        this.held.push(() => { if (!to.destroyed) to.write(chunk); });
        if (request) for (const listener of this.onRequestHeld) listener();
        return;
      }
      if (this.delayMs > 0) setTimeout(() => to.write(chunk), this.delayMs);
      else to.write(chunk);
    });
  }
}
