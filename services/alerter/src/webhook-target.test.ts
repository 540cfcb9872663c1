import { describe, expect, it } from 'vitest';
import { isInternalAddress, webhookTargetProblem } from './webhook-target.js';

describe('webhook targets', () => {
  it.each([
    '127.0.0.1',
    '10.1.2.3',
    '172.31.255.255',
    '192.168.0.10',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '::1',
    '::',
    'fe80::1',
    'fd12:3456::1',
    '::ffff:169.254.169.254',
    '::ffff:127.0.0.1',
  ])('knows %s is internal', (address) => {
    expect(isInternalAddress(address)).toBe(true);
  });

  it.each(['93.184.215.14', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])(
    'knows %s is public',
    (address) => {
      expect(isInternalAddress(address)).toBe(false);
    },
  );

  it('refuses internal literals and names that resolve inside, unless allowed', async () => {
    const resolve = async (host: string) =>
      ({ 'hooks.example.com': ['93.184.215.14'], 'sneaky.example.com': ['8.8.8.8', '10.0.0.5'] })[
        host
      ] ?? Promise.reject(new Error('ENOTFOUND'));
    const judge = (url: string, allowInternal = false) =>
      webhookTargetProblem(url, { allowInternal, resolve });
    expect(await judge('http://169.254.169.254/latest/meta-data/')).toMatch(
      /^169\.254\.169\.254 is an internal address; set TOUCHSTREAM_WEBHOOK_ALLOW_INTERNAL=true/,
    );
    expect(await judge('http://[::1]:8080/hook')).toMatch(/^::1 is an internal address/);
    expect(await judge('http://localhost:9000/')).toMatch(/^localhost is an internal/);
    expect(await judge('https://sneaky.example.com/hook')).toMatch(
      /^sneaky\.example\.com resolves to 10\.0\.0\.5, which is an internal address/,
    );
    expect(await judge('https://hooks.example.com/touchstream')).toBeUndefined();
    expect(await judge('https://unknown.example.com/hook')).toBeUndefined();
    expect(await judge('http://169.254.169.254/', true)).toBeUndefined();
  });
});
