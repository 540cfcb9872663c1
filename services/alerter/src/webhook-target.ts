import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * Addresses a webhook must not reach unless the operator allows it: loopback, private,
 * link-local (the cloud metadata service at 169.254.169.254 among them), carrier-grade NAT,
 * unspecified, multicast and reserved. A rule's author could otherwise make the alerter
 * send requests into the network it runs in.
 */
const INTERNAL = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 3],
] as const) {
  INTERNAL.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  INTERNAL.addSubnet(network, prefix, 'ipv6');
}

/** True for an address inside the machine's or its network's own ranges. */
export function isInternalAddress(address: string): boolean {
  // An IPv4 address written as IPv6 (::ffff:169.254.169.254) is the IPv4 address.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return INTERNAL.check(mapped, 'ipv4');
  const family = isIP(address);
  if (family === 0) return false;
  return INTERNAL.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export type Resolve = (host: string) => Promise<string[]>;

const resolveAll: Resolve = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * Why the alerter must not post to this URL, or undefined when it may. Names are resolved
 * and every address is judged: a public name can point inside. A name that does not resolve
 * now is let through (the delivery fails on its own and is checked again then).
 */
export async function webhookTargetProblem(
  url: string,
  options: { allowInternal: boolean; resolve?: Resolve },
): Promise<string | undefined> {
  if (options.allowInternal) return undefined;
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const internal = `is an internal address; set TOUCHSTREAM_WEBHOOK_ALLOW_INTERNAL=true to allow webhooks inside this network`;
  if (host === 'localhost' || host.endsWith('.localhost')) return `${host} ${internal}`;
  if (isIP(host) !== 0) return isInternalAddress(host) ? `${host} ${internal}` : undefined;
  let addresses: string[];
  try {
    addresses = await (options.resolve ?? resolveAll)(host);
  } catch {
    return undefined;
  }
  const inside = addresses.find(isInternalAddress);
  return inside ? `${host} resolves to ${inside}, which ${internal}` : undefined;
}
