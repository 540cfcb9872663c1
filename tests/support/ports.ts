import { createServer } from 'node:net';

function listenable(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as { port: number };
      server.close(() => resolve(bound));
    });
  });
}

/** A free port whose neighbour is free too: Kafka's controller listens on port + 1. */
export async function freePortPair(): Promise<number> {
  for (;;) {
    const port = await listenable(0);
    if (port !== undefined && port < 65535 && (await listenable(port + 1)) !== undefined) {
      return port;
    }
  }
}
