import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedPost {
  path: string;
  headers: IncomingHttpHeaders;
  // biome-ignore lint/suspicious/noExplicitAny: the tests assert the shape of what comes in.
  body: any;
}

/**
 * A webhook endpoint on 127.0.0.1 that records every POST and answers 200. `down()` stops
 * listening (connections are refused, as from a receiver that is away) and `up()` listens
 * again on the same port.
 */
export async function startWebhookReceiver() {
  const received: ReceivedPost[] = [];
  let server: Server | undefined;
  let port = 0;

  const up = async () => {
    if (server) return;
    const next = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        received.push({
          path: request.url ?? '',
          headers: request.headers,
          body: text ? JSON.parse(text) : undefined,
        });
        response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    next.listen(port, '127.0.0.1');
    await once(next, 'listening');
    port = (next.address() as AddressInfo).port;
    server = next;
  };

  const down = async () => {
    const current = server;
    if (!current) return;
    server = undefined;
    current.closeAllConnections();
    await new Promise<void>((resolve) => current.close(() => resolve()));
  };

  await up();
  return {
    /** A URL of this receiver; `name` tells rules apart in `received`. */
    url: (name: string) => `http://127.0.0.1:${port}/${name}`,
    /** Posts received at /name. */
    posts: (name: string) => received.filter((p) => p.path === `/${name}`),
    up,
    down,
    close: down,
  };
}

export type WebhookReceiver = Awaited<ReturnType<typeof startWebhookReceiver>>;
