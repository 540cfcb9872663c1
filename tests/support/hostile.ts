/**
 * Hostile HTTP requests for fuzzing a running Touchstream: fast-check arbitraries of what a
 * broken or malicious client sends, a sender that puts them on the wire byte for byte, and
 * the checks every answer must pass. Shared by tests/integration/fuzz.test.ts and
 * bench/fuzz.ts, so the bench finds what the test would.
 *
 * Bodies are generated as bytes, not objects: invalid JSON, numbers JSON cannot hold as a
 * double (2^53 + 1, 1e400), `-0`, non-JSON tokens (NaN), invalid UTF-8 and compressed bodies
 * are all possible. Most bodies are a VALID body with one or two fields replaced, removed,
 * added or stretched, so the fuzz gets past the JSON parser into validation and the store.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpRequest } from 'node:http';
import {
  brotliCompressSync,
  brotliDecompressSync,
  deflateSync,
  gunzipSync,
  gzipSync,
  inflateSync,
} from 'node:zlib';
import { MAX_BODY_BYTES } from '@touchstream/contracts';
import type { Store } from '@touchstream/store';
import fc from 'fast-check';
import { makeEvent } from './events.js';
import { callJson } from './http.js';

// ------------------------------------------------------------------ raw JSON text

/** JSON text put into a body as it is: numbers a double cannot hold, NaN, deep nesting. */
export class Raw {
  constructor(readonly text: string) {}
}
const raw = (text: string) => new Raw(text);

/**
 * JSON text of a value that may hold Raw parts. Keys come from own entries, so a
 * `__proto__` key made with Object.fromEntries is written like any other. Strings are
 * escaped as JSON.stringify does (lone surrogates become `\ud83d`), or, with
 * `escaped: false`, written as they are, control characters included.
 */
export function toJsonText(value: unknown, escaped = true): string {
  if (value instanceof Raw) return value.text;
  if (typeof value === 'string') {
    return escaped ? JSON.stringify(value) : `"${value.replace(/["\\]/g, '\\$&')}"`;
  }
  if (Array.isArray(value)) return `[${value.map((v) => toJsonText(v, escaped)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const members = Object.entries(value).filter(([, v]) => v !== undefined);
    return `{${members.map(([k, v]) => `${toJsonText(k, escaped)}:${toJsonText(v, escaped)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

// ------------------------------------------------------------------ strings

/** Any UTF-16 code unit, lone surrogates included: what a JSON `\u` escape can carry. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u));

const controlChar = fc
  .constantFrom(...Array.from({ length: 32 }, (_, i) => i), 0x7f, 0x85, 0x9f)
  .map((u) => String.fromCharCode(u));

const SPECIAL_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud83d',
  '\udc00',
  'a\ud83db',
  '\udc00\ud83d',
  'evt-\ud800',
  '\ud83d\ude00',
  '😀',
  '👩‍👩‍👧‍👦',
  '🏳️‍🌈',
  '\u202e',
  '\ufeff',
  '\uffff',
  '\ufffe',
  '\u2028',
  '\r\n',
  'é',
  'e\u0301',
  '%00',
  '%',
  '..',
  '../../etc/passwd',
  '\\',
  '"',
  "'",
  "' OR '1'='1",
  "'); DROP TABLE events; --",
  '{{7*7}}',
  '$' + '{7*7}',
  '<script>alert(1)</script>',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'NaN',
  'Infinity',
  'null',
  'true',
  '1e308',
  '-0',
  '9007199254740993',
  'product_viewed\u0000',
  'web\n',
];

/** Lengths around the contract's limits (64, 128, 1024) and far past them. */
const longString = fc
  .tuple(
    fc.constantFrom(63, 64, 65, 128, 129, 1024, 1025, 10_000, 300_000),
    fc.constantFrom('x', 'é', '😀', '\u0000', '\ud83d', 'e\u0301'),
  )
  .map(([length, piece]) => piece.repeat(Math.ceil(length / piece.length)));

/** Strings a client should not send, and some it may. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SPECIAL_STRINGS) },
  { weight: 3, arbitrary: fc.string({ unit: codeUnit, maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: controlChar, minLength: 1, maxLength: 10 }) },
  { weight: 1, arbitrary: longString },
);

// ------------------------------------------------------------------ numbers

const HOSTILE_NUMBERS = [
  1e308,
  -1e308,
  1e16,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53) - 2,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  5e-324,
  -5e-324,
  0,
  -1,
  0.5,
  1.5,
  2 ** 31,
  2 ** 32,
  2 ** 63,
  2 ** 64,
  1e21,
  // Epoch milliseconds at the edges of what an event time may be, and past them.
  Date.UTC(2200, 0, 1),
  Date.UTC(2200, 0, 1) - 1,
  -62_167_219_200_000,
  8.64e15,
];

/** JSON numbers a double cannot hold exactly, or at all: written as text. */
const NUMBER_TEXTS = [
  '-0',
  '-0.0',
  '9007199254740993',
  '-9007199254740993',
  '18446744073709551616',
  '123456789012345678901234567890',
  '1e400',
  '-1e400',
  '1e-400',
  '0.30000000000000004',
  '1E+2',
  '1.0',
  '1e-7',
];

/** Not JSON at all: a body holding one of these is invalid JSON. */
const NOT_JSON = [
  'NaN',
  'Infinity',
  '-Infinity',
  '+1',
  '01',
  '.5',
  '5.',
  '0x10',
  '1_000',
  'undefined',
];

export const hostileNumber: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_NUMBERS) },
  { weight: 3, arbitrary: fc.constantFrom(...NUMBER_TEXTS).map(raw) },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.maxSafeInteger() },
  {
    weight: 1,
    arbitrary: fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map((n) => raw(String(n))),
  },
);

// ------------------------------------------------------------------ structures

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'];

/** `{"__proto__": ...}` and friends, as own keys. */
const protoObject = fc
  .tuple(
    fc.constantFrom(...PROTO_KEYS),
    fc.constantFrom<unknown>({ polluted: true }, { prototype: { polluted: true } }, 'x', 1, null),
  )
  .map(([key, value]) => Object.fromEntries([[key, value]]));

/** Objects with more keys than any limit: 51 is one past the properties limit. */
const manyKeys = fc
  .tuple(fc.constantFrom(51, 101, 1_000, 3_000, 20_000), fc.constantFrom<unknown>(1, 'v', true))
  .map(([n, value]) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, value])));

/** Valid JSON nested far deeper than any body needs. */
const deepJson = fc
  .tuple(fc.constantFrom(1_000, 10_000, 100_000), fc.boolean())
  .map(([depth, array]) =>
    raw(
      array
        ? '['.repeat(depth) + ']'.repeat(depth)
        : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
    ),
  );

/** Names of every field of every body, and the prototype's, as keys a mutation may add. */
const KNOWN_KEYS = [
  'events',
  'sent_at',
  'event_id',
  'customer_id',
  'anonymous_id',
  'type',
  'channel',
  'timestamp',
  'properties',
  'name',
  'steps',
  'step_timeout',
  'failure_event_types',
  'event_type',
  'where',
  'journey',
  'from',
  'to',
  'window',
  'breakdown',
  'filters',
  'property',
  'op',
  'value',
  'step',
  'condition',
  'min_entries',
  'drop',
  'baseline_window',
  'for',
  'webhook_url',
  'id',
  // The Segment-compatible routes.
  'batch',
  'messageId',
  'userId',
  'anonymousId',
  'previousId',
  'event',
  'traits',
  'originalTimestamp',
  'sentAt',
  'context',
  'integrations',
  'category',
  'groupId',
  'writeKey',
  ...PROTO_KEYS,
];

export const hostileKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...KNOWN_KEYS),
  hostileString,
);

const hostileScalar = fc.oneof(hostileString, hostileNumber, fc.constantFrom(true, false, null));

/** Objects no schema expects: too many keys, prototype keys, hostile keys and values. */
const hostileObject: fc.Arbitrary<unknown> = fc.oneof(
  manyKeys,
  protoObject,
  fc
    .array(fc.tuple(hostileKey, hostileScalar), { minLength: 1, maxLength: 4 })
    .map((entries) => Object.fromEntries(entries)),
);

/** Any value a field may be replaced by. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: hostileString },
  { weight: 4, arbitrary: hostileNumber },
  { weight: 1, arbitrary: fc.constantFrom(true, false, null) },
  { weight: 1, arbitrary: fc.constantFrom(...NOT_JSON).map(raw) },
  { weight: 2, arbitrary: hostileObject },
  { weight: 1, arbitrary: deepJson },
  { weight: 1, arbitrary: fc.array(hostileScalar, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

/**
 * A replacement for a value, mostly of its own type, so most replacements get past the type
 * check to the checks behind it: a string by a hostile string, a number by a number a double
 * cannot hold, an object by too many or prototype keys.
 */
function replacementFor(old: unknown): fc.Arbitrary<unknown> {
  const own =
    typeof old === 'string'
      ? hostileString
      : typeof old === 'number' || typeof old === 'boolean' || old === null
        ? hostileNumber
        : Array.isArray(old)
          ? fc.array(hostileValue, { minLength: 1, maxLength: 3 })
          : hostileObject;
  return fc.oneof({ weight: 3, arbitrary: own }, { weight: 1, arbitrary: hostileValue });
}

// ------------------------------------------------------------------ mutations of valid bodies

type Path = readonly (string | number)[];
const REMOVE = Symbol('remove');

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Raw);

function pathsOf(value: unknown, at: Path = []): Path[] {
  const entries = Array.isArray(value)
    ? value.map((v, i) => [i, v] as const)
    : isObject(value)
      ? Object.entries(value)
      : [];
  return entries.flatMap(([key, v]) => [[...at, key], ...pathsOf(v, [...at, key])]);
}

function valueAt(value: unknown, path: Path): unknown {
  let here = value;
  for (const key of path) here = (here as Record<string | number, unknown> | undefined)?.[key];
  return here;
}

/** A copy with the value at `path` changed; a path that no longer exists changes nothing. */
function edit(value: unknown, path: Path, change: (old: unknown) => unknown): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return change(value);
  if (Array.isArray(value)) {
    if (typeof head !== 'number' || head > value.length) return value;
    if (head === value.length && rest.length > 0) return value;
    const next = edit(value[head], rest, change);
    const copy = [...value];
    if (next === REMOVE) copy.splice(head, 1);
    else copy[head] = next;
    return copy;
  }
  if (!isObject(value)) return value;
  const entries = Object.entries(value);
  const index = entries.findIndex(([k]) => k === String(head));
  if (index < 0 && rest.length > 0) return value;
  const next = edit(index < 0 ? undefined : entries[index]?.[1], rest, change);
  if (next === REMOVE) {
    if (index >= 0) entries.splice(index, 1);
  } else if (index < 0) entries.push([String(head), next]);
  else entries[index] = [String(head), next];
  // fromEntries defines own properties: a `__proto__` key stays a key.
  return Object.fromEntries(entries);
}

/** What a valid string is stretched by: one odd character, or a long run, passes most formats. */
const stretchPiece = fc.oneof(
  controlChar,
  fc.constantFrom(...SPECIAL_STRINGS),
  longString,
  hostileString,
);

/**
 * The list repeated to `n` items, or to as many as fit in a few body limits: copies of an
 * item another mutation made huge would not fit in a string.
 */
function grown(list: unknown, n: number): unknown {
  if (!Array.isArray(list) || list.length === 0) return list;
  const itemSize = toJsonText(list).length / list.length;
  const fit = Math.max(list.length, Math.floor((4 * MAX_BODY_BYTES) / Math.max(1, itemSize)));
  return Array.from({ length: Math.min(n, fit) }, (_, i) => list[i % list.length]);
}

interface Mutation {
  path: Path;
  change: (old: unknown) => unknown;
}

/**
 * The valid body with one to three of its fields replaced by a hostile value, removed,
 * stretched by a hostile string before or after (which keeps a URL a URL, an id an id), or
 * with a hostile key added to one of its objects.
 */
export function mutated(valid: unknown): fc.Arbitrary<unknown> {
  const paths = pathsOf(valid);
  const strings = paths.filter((p) => typeof valueAt(valid, p) === 'string');
  const objects = [[], ...paths.filter((p) => isObject(valueAt(valid, p)))];
  const arrays = paths.filter((p) => Array.isArray(valueAt(valid, p)));
  const options: fc.WeightedArbitrary<Mutation>[] = [
    {
      weight: 5,
      arbitrary: fc
        .constantFrom(...paths)
        .chain((path) =>
          replacementFor(valueAt(valid, path)).map((value) => ({ path, change: () => value })),
        ),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(...paths).map((path) => ({ path, change: () => REMOVE })),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...objects), hostileKey, hostileValue)
        .map(([at, key, value]) => ({ path: [...at, key], change: () => value })),
    },
  ];
  if (strings.length > 0) {
    options.push({
      weight: 3,
      arbitrary: fc
        .tuple(fc.constantFrom(...strings), stretchPiece, fc.boolean())
        .map(([path, piece, before]) => ({
          path,
          change: (old) => (typeof old === 'string' ? (before ? piece + old : old + piece) : old),
        })),
    });
  }
  if (arrays.length > 0) {
    options.push(
      {
        // One more item, of any kind.
        weight: 1,
        arbitrary: fc.tuple(fc.constantFrom(...arrays), hostileValue).map(([path, value]) => ({
          path,
          change: (old) => (Array.isArray(old) ? [...old, value] : old),
        })),
      },
      {
        // Past every list's limit (20 steps, 50 types, 100 values, 1,000 events) with copies.
        weight: 1,
        arbitrary: fc
          .tuple(fc.constantFrom(...arrays), fc.constantFrom(21, 51, 101, 1_001, 20_000))
          .map(([path, n]) => ({ path, change: (old) => grown(old, n) })),
      },
    );
  }
  return fc
    .array(fc.oneof(...options), { minLength: 1, maxLength: 2 })
    .map((changes) => changes.reduce((body, m) => edit(body, m.path, m.change), valid));
}

// ------------------------------------------------------------------ bodies

/** A request body as bytes, with what the server should read from it once decoded. */
export interface Body {
  bytes: Buffer;
  contentType?: string;
  contentEncoding?: string;
  /** Sent in chunks without Content-Length. */
  chunked?: boolean;
  /** The text the server reads after any Content-Encoding, when the generator knows it. */
  decoded?: string;
  kind: string;
}

const json = (text: string | Buffer, kind: string, contentType = 'application/json'): Body => {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
  return { bytes, contentType, decoded: bytes.toString('utf8'), kind };
};

/** Media types other than application/json, and odd spellings of it. */
const CONTENT_TYPES = [
  'text/plain',
  'text/html',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/octet-stream',
  'application/json; charset=utf-16le',
  'application/json; charset=iso-8859-1',
  'application/json;charset=UTF-8',
  'APPLICATION/JSON',
  'application/jsonx',
  'application/vnd.api+json',
  'application/merge-patch+json',
  'json',
  '*/*',
  '',
  'application/json, text/plain',
  'application/json; boundary=\u00ff',
];

const RAW_TEXTS = [
  '',
  ' ',
  'null',
  'true',
  '0',
  '-0',
  '""',
  '[]',
  '{}',
  '{"events":null}',
  '\ufeff{}',
  '{,}',
  '{"a":1,}',
  '[1,]',
  '{"a" 1}',
  "{'a':1}",
  '// comment\n{}',
  '{"a":1}{"b":2}',
  '{"a":1} x',
  '\u0000',
  'NaN',
  '{"events":[NaN]}',
  '{"events":[{"timestamp":Infinity}]}',
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '{"a":"\\ud83d"}',
  '{"a":"\\u0000"}',
  '{"a":"\\x00"}',
  '{"a":"\\uZZZZ"}',
  '[[[[[[[[[[[[[[[[[[[[',
  '{"a":{"a":{"a":',
  '"\\',
];

/** Bytes that are not UTF-8: lone continuation, overlong NUL, CESU surrogate, past U+10FFFF. */
const BAD_UTF8 = [
  [0xff],
  [0xfe, 0xff],
  [0x80],
  [0xc0, 0x80],
  [0xed, 0xa0, 0xbd],
  [0xf4, 0x90, 0x80, 0x80],
  [0xe2, 0x82],
];
const MARK = '\u0001MARK\u0001';

const compressions: Record<string, ((b: Buffer) => Buffer) | undefined> = {
  gzip: gzipSync,
  'x-gzip': gzipSync,
  GZIP: gzipSync,
  deflate: deflateSync,
  br: brotliCompressSync,
  'gzip, identity': gzipSync,
  identity: (b) => b,
};

/**
 * A valid body behind whitespace far past the body limit once decompressed: taken whole, it
 * would be answered 2xx. Made once per size and body, compressing them is slow.
 */
const bombs = new Map<string, Buffer>();
function bomb(encoding: string, size: number, valid: string): Body {
  const compress = compressions[encoding] ?? gzipSync;
  const key = `${encoding}:${size}:${valid}`;
  const text = ' '.repeat(size) + valid;
  let bytes = bombs.get(key);
  if (!bytes) {
    bytes = compress(Buffer.from(text));
    bombs.set(key, bytes);
  }
  return {
    bytes,
    contentType: 'application/json',
    contentEncoding: encoding,
    kind: 'bomb',
    decoded: text,
  };
}

/**
 * Bodies for a route taking JSON, built around its valid bodies: mostly mutations of them,
 * then raw and truncated text, deep nesting, invalid UTF-8, bodies past the limit, compressed
 * bodies (a bomb among them) and other media types.
 */
export function hostileBodies(valid: readonly unknown[]): fc.Arbitrary<Body> {
  const validText = fc.constantFrom(...valid.map((v) => toJsonText(v)));
  const mutatedValue = fc.oneof(...valid.map(mutated));
  const mutatedText = mutatedValue.map((v) => toJsonText(v));
  return fc.oneof(
    { weight: 14, arbitrary: mutatedText.map((t) => json(t, 'mutated')) },
    { weight: 1, arbitrary: validText.map((t) => json(t, 'valid')) },
    {
      weight: 1,
      arbitrary: mutatedValue.map((v) => json(toJsonText(v, false), 'mutated, unescaped')),
    },
    {
      weight: 2,
      arbitrary: fc
        .oneof(
          fc.constantFrom(...RAW_TEXTS),
          fc.string({ unit: codeUnit, maxLength: 100 }),
          fc.json({ maxDepth: 3 }),
        )
        .map((t) => json(t, 'raw')),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(validText, fc.nat())
        .map(([t, n]) => json(t.slice(0, n % t.length), 'truncated')),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom(1_000, 100_000, 500_000),
          fc.constantFrom('[', '{"a":', '{"events":['),
        )
        .map(([depth, open]) => json(open.repeat(depth), 'deep, unclosed')),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            ...valid.flatMap((v) =>
              pathsOf(v)
                .filter((p) => typeof valueAt(v, p) === 'string')
                .map((p) => [v, p] as const),
            ),
          ),
          fc.constantFrom(...BAD_UTF8),
        )
        .map(([[body, path], bytes]) => {
          const [before, after] = toJsonText(edit(body, path, () => MARK)).split(
            JSON.stringify(MARK).slice(1, -1),
          );
          return json(
            Buffer.concat([
              Buffer.from(before ?? ''),
              Buffer.from(bytes),
              Buffer.from(after ?? ''),
            ]),
            'invalid utf-8',
          );
        }),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          validText,
          fc.constantFrom(MAX_BODY_BYTES + 1, 2 * MAX_BODY_BYTES, 4 * MAX_BODY_BYTES),
          fc.boolean(),
        )
        .map(([t, size, chunked]) => {
          // Whitespace before the body: still valid JSON, only too long.
          const text = ' '.repeat(Math.max(0, size - t.length)) + t;
          return { ...json(text, 'oversized'), chunked };
        }),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.oneof(validText, mutatedText),
          fc.constantFrom(...Object.keys(compressions)),
          fc.constantFrom('compressed', 'bomb', 'not compressed'),
          fc.constantFrom(MAX_BODY_BYTES + 1, 16 * MAX_BODY_BYTES),
        )
        .map(([text, encoding, how, size]): Body => {
          if (how === 'bomb' && encoding !== 'identity') return bomb(encoding, size, text);
          const plain = Buffer.from(text);
          const compress = compressions[encoding];
          if (how === 'not compressed' || !compress) {
            // The header says compressed, the body is not: what the server reads is unknown.
            return {
              bytes: plain,
              contentType: 'application/json',
              contentEncoding: encoding,
              kind: 'mislabelled encoding',
            };
          }
          return {
            bytes: compress(plain),
            contentType: 'application/json',
            contentEncoding: encoding,
            decoded: plain.toString('utf8'),
            kind: 'compressed',
          };
        }),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(validText, fc.option(fc.constantFrom(...CONTENT_TYPES), { nil: undefined }))
        .map(([t, type]) => ({ ...json(t, 'other media type'), contentType: type })),
    },
  );
}

// ------------------------------------------------------------------ paths and queries

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** UTF-8 of a code point, lone surrogates included (as WTF-8 would write them). */
function utf8Of(codePoint: number): number[] {
  if (codePoint < 0x80) return [codePoint];
  if (codePoint < 0x800) return [0xc0 | (codePoint >> 6), 0x80 | (codePoint & 63)];
  if (codePoint < 0x10000) {
    return [0xe0 | (codePoint >> 12), 0x80 | ((codePoint >> 6) & 63), 0x80 | (codePoint & 63)];
  }
  return [
    0xf0 | (codePoint >> 18),
    0x80 | ((codePoint >> 12) & 63),
    0x80 | ((codePoint >> 6) & 63),
    0x80 | (codePoint & 63),
  ];
}

/** Percent-encoding that, unlike encodeURIComponent, also takes lone surrogates. */
export function percentEncode(s: string): string {
  let out = '';
  for (const ch of s) {
    if (UNRESERVED.test(ch)) out += ch;
    else {
      for (const byte of utf8Of(ch.codePointAt(0) ?? 0)) {
        out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
      }
    }
  }
  return out;
}

/** Path segments as sent, for segments percent-encoding cannot express (`%`, `..`). */
const RAW_SEGMENTS = [
  '%',
  '%zz',
  '%00',
  '%E0%A4%A',
  '%ED%A0%BD',
  '%C0%80',
  '%FF',
  '.',
  '..',
  '%2e%2e',
  '..%2F..',
  'a%2Fb',
  '%2F',
  'a/b',
  ';',
  'a;b=c',
  '*',
  '~',
  '%20',
  '+',
  '%3F',
  '%23',
  'x'.repeat(65),
  'x'.repeat(101),
  'x'.repeat(5_000),
];

const validId = fc.stringMatching(/^[a-z0-9_-]{1,64}$/);

/** Ids for /{id}: the given existing ones, valid ones, and hostile ones. */
export function hostileId(existing: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...existing) },
    { weight: 2, arbitrary: validId },
    { weight: 5, arbitrary: hostileString.map(percentEncode) },
    { weight: 2, arbitrary: fc.constantFrom(...RAW_SEGMENTS) },
  );
}

const QUERY_GARBAGE = [
  '?',
  '?&',
  '?=',
  '?&&=&=',
  '?%',
  '?from=%',
  '?from=%zz',
  '?from=%E0%A4%A',
  '?from[]=a',
  '?from[a]=b',
  '?from=a&from=b',
  '?state=firing&state=resolved',
  '?__proto__[polluted]=1',
  '?constructor[prototype][polluted]=1',
  '?;',
  '?a=1;b=2',
  '??',
  '?#',
];

/** Time texts for ?from= and ?to=: valid ones and ones at or past what a date holds. */
const TIME_TEXTS = [
  '2026-10-01T00:00:00Z',
  '2026-10-01T00:00:00.123456789Z',
  '2026-10-01T00:00:00+14:00',
  '2026-10-01T00:00:00+99:99',
  '2026-02-30T00:00:00Z',
  '1970-01-01T00:00:00Z',
  '1969-12-31T23:59:59.999Z',
  '0000-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '+275760-09-13T00:00:00Z',
  '2026-10-01',
  '2026-10-01T00:00:00',
  '1790856003250',
];

/** A query string: the route's own parameters with hostile values, hostile names, garbage. */
export function hostileQuery(
  names: readonly string[],
  values: readonly string[] = [],
): fc.Arbitrary<string> {
  const value = fc.oneof(
    { weight: 3, arbitrary: hostileString.map(percentEncode) },
    { weight: 2, arbitrary: fc.constantFrom(...TIME_TEXTS, ...values).map(percentEncode) },
    { weight: 1, arbitrary: hostileNumber.map((n) => percentEncode(toJsonText(n))) },
  );
  const name = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...names, ...PROTO_KEYS) },
    { weight: 1, arbitrary: hostileString.map(percentEncode) },
  );
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant('') },
    {
      weight: 6,
      arbitrary: fc
        .array(fc.tuple(name, value), { minLength: 1, maxLength: 4 })
        .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
    },
    { weight: 1, arbitrary: fc.constantFrom(...QUERY_GARBAGE) },
    {
      weight: 1,
      // Past Node's 16 KiB header limit at the largest.
      arbitrary: fc
        .constantFrom(1_000, 8_000, 20_000)
        .map((n) => `?${names[0] ?? 'x'}=${'a'.repeat(n)}`),
    },
  );
}

// ------------------------------------------------------------------ valid bodies

/** What the fuzz stores before each route, so valid names resolve and queries find data. */
export const FIXTURE_JOURNEY_ID = 'fuzz-checkout';
export const FIXTURE_RULE_ID = 'fuzz-rule';

export const validJourney = {
  name: 'Fuzz checkout',
  steps: [
    {
      name: 'viewed',
      event_type: 'product_viewed',
      channel: 'web',
      where: { plan: 'pro', amount: 42 },
    },
    { name: 'carted', event_type: 'cart_added' },
    { name: 'ordered', event_type: 'order_placed', where: { paid: true, coupon: null } },
  ],
  step_timeout: '30m',
  failure_event_types: ['payment_failed'],
};

const now = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();

/** A valid batch: ISO and epoch times, every kind of property value. */
export const validBatch = {
  events: [
    {
      event_id: 'fuzz-e1',
      customer_id: 'fuzz-c1',
      type: 'product_viewed',
      channel: 'web',
      timestamp: iso(now - 3_600_000),
      properties: { plan: 'pro', amount: 42, gift: false, note: null },
    },
    {
      event_id: 'fuzz-e2',
      customer_id: 'fuzz-c1',
      type: 'cart_added',
      channel: 'mobile',
      timestamp: now - 3_000_000,
    },
  ],
};

export const validFunnelQueries = [
  {
    steps: [
      { event_type: 'product_viewed', channel: 'web', where: { plan: 'pro', amount: 42 } },
      { name: 'carted', event_type: 'cart_added', where: { gift: false } },
    ],
    from: iso(now - 86_400_000),
    to: iso(now),
    window: '1h',
    breakdown: 'channel',
    filters: [
      { property: 'amount', op: 'gt', value: 10 },
      { property: 'plan', op: 'eq', value: 'pro' },
      { property: 'plan', op: 'in', value: ['pro', 1, true] },
      { property: 'plan', op: 'contains', value: 'p' },
    ],
  },
  { journey: FIXTURE_JOURNEY_ID, breakdown: 'property:plan' },
  {
    steps: [
      { event_type: 'product_viewed' },
      { event_type: 'cart_added', optional: true },
      { event_type: 'order_placed', where: { plan: 'pro' } },
    ],
    window: '2h',
    order: 'any',
    exclusions: [
      {
        event_type: 'cart_removed',
        channel: 'web',
        where: { gift: true },
        after_step: 0,
        before_step: 2,
      },
    ],
    hold_constant: ['product_id', 'plan'],
    breakdown: 'channel',
    breakdown_attribution: 'step:1',
    filters: [{ property: 'amount', op: 'lt', value: 100 }],
  },
  {
    journey: FIXTURE_JOURNEY_ID,
    exclusions: [{ event_type: 'cart_removed', after_step: 0, before_step: 1 }],
    breakdown: 'property:plan',
    breakdown_attribution: 'last_touch',
  },
];

export const validAlertRule = {
  journey: FIXTURE_JOURNEY_ID,
  step: 'carted',
  condition: 'conversion_drop',
  window: '5m',
  min_entries: 20,
  drop: 0.5,
  baseline_window: '7d',
  for: '0s',
  // TEST-NET-1: public as far as the internal-address check goes, and nothing answers there.
  webhook_url: 'http://192.0.2.1/fuzz',
};

/** A valid Segment batch (POST /v1/batch): every call, nested and listed properties. */
export const validSegmentBatch = {
  writeKey: 'ignored',
  sentAt: iso(now - 3_590_000),
  context: { library: { name: 'analytics-node', version: '3.1.0' } },
  batch: [
    {
      type: 'track',
      messageId: 'fuzz-seg-track',
      userId: 'fuzz-c1',
      anonymousId: 'fuzz-a1',
      event: 'Order Completed',
      properties: {
        channel: 'Web Shop',
        total: 42.5,
        paid: true,
        coupon: null,
        address: { city: 'Lyon', zip: 69001 },
        products: [{ sku: 'a' }],
      },
      context: { channel: 'web', ip: '192.0.2.1' },
      integrations: { All: true },
      _metadata: { jsRuntime: 'node' },
      timestamp: iso(now - 3_600_000),
    },
    {
      type: 'identify',
      messageId: 'fuzz-seg-identify',
      userId: 'fuzz-c1',
      traits: { email: 'fuzz@example.com', plan: 'pro', address: { city: 'Oslo' } },
      originalTimestamp: iso(now - 3_600_000),
    },
    {
      type: 'page',
      messageId: 'fuzz-seg-page',
      anonymousId: 'fuzz-a2',
      name: 'Pricing',
      category: 'Docs',
      properties: { path: '/pricing' },
      timestamp: now - 3_000_000,
    },
    {
      type: 'screen',
      messageId: 'fuzz-seg-screen',
      userId: 'fuzz-c1',
      name: 'Home',
      timestamp: iso(now - 3_000_000),
    },
    {
      type: 'alias',
      messageId: 'fuzz-seg-alias',
      userId: 'fuzz-c1',
      previousId: 'fuzz-a1',
      timestamp: iso(now - 3_000_000),
    },
    { type: 'group', messageId: 'fuzz-seg-group', userId: 'fuzz-c1', groupId: 'acme' },
  ],
};

/** A valid message of each single-message Segment route, by route. */
export const validSegmentMessages: Record<string, Record<string, unknown>> = Object.fromEntries(
  validSegmentBatch.batch
    .filter((message) => message.type !== 'group')
    .map(({ type, ...message }) => [type, { ...message, messageId: `${message.messageId}-1` }]),
);

// ------------------------------------------------------------------ requests

export interface Keys {
  ingest: string;
  query: string;
  /** TOUCHSTREAM_ADMIN_KEYS: erasure. */
  admin: string;
}

/** One request, printed short enough to read when fast-check reports it. */
export class FuzzRequest {
  constructor(
    readonly route: string,
    readonly method: string,
    readonly path: string,
    readonly headers: Record<string, string>,
    readonly body?: Body,
    /** The body is the route's own (a PUT or POST with a schema), so the server reads it. */
    readonly bodyRead = false,
  ) {}

  [fc.toStringMethod]() {
    return describeRequest(this);
  }
}

const preview = (text: string, max = 600) =>
  text.length <= max
    ? text
    : `${text.slice(0, max / 2)} …(${text.length - max} more)… ${text.slice(-max / 2)}`;

/** `PUT /v1/journeys/x {headers} body: …`: what a report needs to replay the request. */
export function describeRequest(request: FuzzRequest): string {
  const { body } = request;
  const shown = body?.decoded ?? body?.bytes.toString('utf8');
  const bodyText = body
    ? ` body (${body.kind}, ${body.bytes.length} B${body.chunked ? ', chunked' : ''}): ${JSON.stringify(preview(shown ?? ''))}`
    : '';
  return `${request.method} ${preview(request.path, 300)} ${JSON.stringify(request.headers, (_k, v) => (typeof v === 'string' ? preview(v, 200) : v))}${bodyText}`;
}

/** Header values Node lets a client send: tab, visible ASCII and Latin-1. */
const headerText = fc.string({
  unit: fc
    .oneof(
      fc.integer({ min: 0x20, max: 0x7e }),
      fc.integer({ min: 0x80, max: 0xff }),
      fc.constant(9),
    )
    .map((c) => String.fromCharCode(c)),
  maxLength: 60,
});

function authorization(own: string, other: string) {
  return fc.oneof(
    { weight: 24, arbitrary: fc.constant<string | undefined>(`Bearer ${own}`) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<string | undefined>(
        undefined,
        'Bearer',
        'Bearer ',
        `Bearer ${other}`,
        `bearer ${own}`,
        `Bearer   ${own}  `,
        `Bearer ${own}, Bearer x`,
        'Basic Zm9vOmJhcg==',
        `Bearer ${'k'.repeat(20_000)}`,
      ),
    },
    { weight: 1, arbitrary: headerText.map((s) => `Bearer ${s}`) },
  );
}

/** What Segment libraries send: the write key as the Basic user name, and broken variants. */
function basicAuthorization(own: string, other: string) {
  const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString('base64')}`;
  return fc.oneof(
    { weight: 20, arbitrary: fc.constant<string | undefined>(basic(`${own}:`)) },
    { weight: 4, arbitrary: fc.constant<string | undefined>(`Bearer ${own}`) },
    {
      weight: 2,
      arbitrary: fc.constantFrom<string | undefined>(
        undefined,
        'Basic',
        'Basic ',
        'Basic ====',
        'Basic %%%',
        basic(`${other}:`),
        basic(`:${own}`),
        basic(`${own}:password`),
        basic(own),
        `basic ${Buffer.from(`${own}:`).toString('base64')}`,
        `Basic ${Buffer.from(`${own}:`).toString('base64')} extra`,
        basic(`${'k'.repeat(20_000)}:`),
      ),
    },
    { weight: 1, arbitrary: headerText.map((s) => `Basic ${s}`) },
    { weight: 1, arbitrary: hostileString.map((s) => basic(`${s}:`)) },
  );
}

/** Headers that have nothing to do with the route, sent now and then. */
const extraHeaders = fc.oneof(
  { weight: 9, arbitrary: fc.constant({}) },
  {
    weight: 1,
    arbitrary: fc.record(
      {
        accept: fc.oneof(fc.constantFrom('text/html', '*/*', 'application/xml', ''), headerText),
        'x-forwarded-for': fc.oneof(fc.constantFrom('::1', '999.1.1.1', 'unknown'), headerText),
        'accept-encoding': fc.constantFrom('gzip', 'br', 'identity;q=0', '*;q=0'),
      },
      { requiredKeys: [] },
    ),
  },
);

interface RouteShape {
  name: string;
  method: string;
  path: fc.Arbitrary<string>;
  audience: 'ingest' | 'query' | 'admin';
  body?: fc.Arbitrary<Body>;
  /** How the route's clients send their key: a Bearer token, or Basic as Segment's do. */
  auth?: 'bearer' | 'basic';
}

/** Bodies sent where a route takes none: they must be ignored or refused, never a 500. */
const strayBody = fc.option(hostileBodies([{ a: 'b' }]), { nil: undefined, freq: 8 });

function route(keys: Keys, shape: RouteShape): FuzzRoute {
  const [own, other] =
    shape.audience === 'ingest'
      ? [keys.ingest, keys.query]
      : shape.audience === 'admin'
        ? [keys.admin, keys.query]
        : [keys.query, keys.ingest];
  const request = fc
    .record({
      path: shape.path,
      method: fc.oneof(
        { weight: 30, arbitrary: fc.constant(shape.method) },
        {
          weight: 1,
          arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
        },
      ),
      authorization:
        shape.auth === 'basic' ? basicAuthorization(own, other) : authorization(own, other),
      extra: extraHeaders,
      body: shape.body ?? strayBody,
    })
    .map(({ path, method, authorization, extra, body }) => {
      const headers: Record<string, string> = { ...extra };
      if (authorization !== undefined) headers.authorization = authorization;
      if (body?.contentType !== undefined) headers['content-type'] = body.contentType;
      if (body?.contentEncoding !== undefined) headers['content-encoding'] = body.contentEncoding;
      const bodyRead = shape.body !== undefined && method === shape.method;
      return new FuzzRequest(shape.name, method, path, headers, body, bodyRead);
    });
  return { name: shape.name, request };
}

export interface FuzzRoute {
  name: string;
  request: fc.Arbitrary<FuzzRequest>;
}

/** Every route of the API, each with its own hostile requests. */
export function fuzzRoutes(keys: Keys): FuzzRoute[] {
  const journeyIds = hostileId([FIXTURE_JOURNEY_ID, 'fuzz-a', 'fuzz-b']);
  const ruleIds = hostileId([FIXTURE_RULE_ID, 'fuzz-a', 'fuzz-b']);
  const noQuery = hostileQuery(['x']);
  const at = (prefix: string, ids: fc.Arbitrary<string>, suffix = '', query = noQuery) =>
    fc.tuple(ids, query).map(([id, q]) => `${prefix}${id}${suffix}${q}`);
  const fixed = (path: string, query = noQuery) => query.map((q) => `${path}${q}`);
  // Where the body is what is fuzzed, the path is mostly valid, so the body gets read.
  const mostly = <T>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<T>) =>
    fc.oneof({ weight: 9, arbitrary: valid }, { weight: 1, arbitrary: hostile });
  const bodyQuery = mostly(fc.constant(''), noQuery);
  const putPath = (prefix: string, ids: fc.Arbitrary<string>, existing: string) =>
    fc
      .tuple(mostly(fc.constantFrom(existing, 'fuzz-a', 'fuzz-b'), ids), bodyQuery)
      .map(([id, q]) => `${prefix}${id}${q}`);
  return [
    route(keys, {
      name: 'PUT /v1/journeys/{id}',
      method: 'PUT',
      path: putPath('/v1/journeys/', journeyIds, FIXTURE_JOURNEY_ID),
      audience: 'query',
      body: hostileBodies([validJourney]),
    }),
    route(keys, {
      name: 'POST /v1/events',
      method: 'POST',
      path: fixed('/v1/events', bodyQuery),
      audience: 'ingest',
      body: hostileBodies([validBatch]),
    }),
    route(keys, {
      name: 'POST /v1/batch',
      method: 'POST',
      path: fixed('/v1/batch', bodyQuery),
      audience: 'ingest',
      auth: 'basic',
      body: hostileBodies([validSegmentBatch]),
    }),
    ...Object.entries(validSegmentMessages).map(([type, message]) =>
      route(keys, {
        name: `POST /v1/${type}`,
        method: 'POST',
        path: fixed(`/v1/${type}`, bodyQuery),
        audience: 'ingest',
        auth: 'basic',
        body: hostileBodies([message]),
      }),
    ),
    route(keys, {
      name: 'GET /v1/journeys',
      method: 'GET',
      path: fixed('/v1/journeys'),
      audience: 'query',
    }),
    route(keys, {
      name: 'GET /v1/journeys/{id}',
      method: 'GET',
      path: at('/v1/journeys/', journeyIds),
      audience: 'query',
    }),
    route(keys, {
      name: 'GET /v1/journeys/{id}/dropoffs',
      method: 'GET',
      path: at('/v1/journeys/', journeyIds, '/dropoffs', hostileQuery(['from', 'to'])),
      audience: 'query',
    }),
    route(keys, {
      name: 'GET /v1/journeys/{id}/dropoffs/{from_step}/insights',
      method: 'GET',
      path: fc
        .tuple(journeyIds, hostileId(['viewed', 'carted', 'ordered']), hostileQuery(['from', 'to']))
        .map(([id, step, q]) => `/v1/journeys/${id}/dropoffs/${step}/insights${q}`),
      audience: 'query',
    }),
    route(keys, {
      name: 'POST /v1/funnels/query',
      method: 'POST',
      path: fixed('/v1/funnels/query', bodyQuery),
      audience: 'query',
      body: hostileBodies(validFunnelQueries),
    }),
    route(keys, {
      name: 'PUT /v1/alert-rules/{id}',
      method: 'PUT',
      path: putPath('/v1/alert-rules/', ruleIds, FIXTURE_RULE_ID),
      audience: 'query',
      body: hostileBodies([validAlertRule]),
    }),
    route(keys, {
      name: 'GET /v1/alert-rules',
      method: 'GET',
      path: fixed('/v1/alert-rules'),
      audience: 'query',
    }),
    route(keys, {
      name: 'GET /v1/alert-rules/{id}',
      method: 'GET',
      path: at('/v1/alert-rules/', ruleIds),
      audience: 'query',
    }),
    route(keys, {
      name: 'GET /v1/alerts',
      method: 'GET',
      path: fixed('/v1/alerts', hostileQuery(['state'], ['firing', 'resolved', 'all'])),
      audience: 'query',
    }),
    route(keys, {
      name: 'GET /v1/customers/{customer_id}',
      method: 'GET',
      path: at('/v1/customers/', hostileId(['fuzz-a', 'fuzz-b'])),
      audience: 'query',
    }),
    route(keys, {
      name: 'GET /v1/erasures/{erasure_id}',
      method: 'GET',
      path: at('/v1/erasures/', hostileId(['00000000-0000-4000-8000-000000000000'])),
      audience: 'query',
    }),
    route(keys, {
      name: 'GET /v1/schema/touchpoint.json',
      method: 'GET',
      path: fixed('/v1/schema/touchpoint.json'),
      audience: 'query',
    }),
    // Deletes last: they remove what the other routes stored.
    route(keys, {
      name: 'DELETE /v1/alert-rules/{id}',
      method: 'DELETE',
      path: at('/v1/alert-rules/', ruleIds),
      audience: 'query',
    }),
    route(keys, {
      name: 'DELETE /v1/journeys/{id}',
      method: 'DELETE',
      path: at('/v1/journeys/', journeyIds),
      audience: 'query',
    }),
    // Erases whatever customer a hostile id names: the events it erases are not expected
    // to be stored (servingProblems leaves them out).
    route(keys, {
      name: 'DELETE /v1/customers/{customer_id}',
      method: 'DELETE',
      path: at('/v1/customers/', hostileId(['fuzz-erased', 'fuzz-a'])),
      audience: 'admin',
    }),
  ];
}

// ------------------------------------------------------------------ sending and checking

export interface FuzzResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * Sends the request as generated: the path is not normalised, the body not re-encoded.
 * A new connection each time, so a connection the server closed cannot fail the next one.
 */
export function send(
  baseUrl: string,
  request: FuzzRequest,
  timeoutMs: number,
): Promise<FuzzResponse> {
  const url = new URL(baseUrl);
  const { body } = request;
  const headers = { ...request.headers };
  if (body && !body.chunked) headers['content-length'] = String(body.bytes.length);
  // Node frames a GET or DELETE body in chunks only when told to.
  if (body?.chunked) headers['transfer-encoding'] = 'chunked';
  return new Promise((resolve, reject) => {
    let answered = false;
    const outgoing = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: request.method,
        path: request.path,
        headers,
        agent: false,
        signal: AbortSignal.timeout(timeoutMs),
      },
      (incoming) => {
        answered = true;
        const chunks: Buffer[] = [];
        incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
        incoming.on('end', () => {
          try {
            const body = decompress(Buffer.concat(chunks), incoming.headers['content-encoding']);
            resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, body });
          } catch (error) {
            reject(
              new Error(
                `the answer's ${incoming.headers['content-encoding']} body does not decode: ${(error as Error).message}`,
              ),
            );
          }
        });
        incoming.on('error', (error) => reject(answerError(error, timeoutMs)));
      },
    );
    // A server may answer (413, say) before it has read the whole body, then close: the
    // answer counts, the failed write does not.
    outgoing.on('error', (error) => {
      if (!answered) reject(answerError(error, timeoutMs));
    });
    if (!body) outgoing.end();
    else if (!body.chunked) outgoing.end(body.bytes);
    else {
      for (let i = 0; i < body.bytes.length; i += 64 * 1024) {
        outgoing.write(body.bytes.subarray(i, i + 64 * 1024));
      }
      outgoing.end();
    }
  });
}

/** The answer's body as sent before its Content-Encoding (a client may ask for gzip). */
function decompress(body: Buffer, encoding: string | undefined): Buffer {
  switch (encoding?.trim().toLowerCase()) {
    case undefined:
    case '':
    case 'identity':
      return body;
    case 'gzip':
    case 'x-gzip':
      return gunzipSync(body);
    case 'deflate':
      return inflateSync(body);
    case 'br':
      return brotliDecompressSync(body);
    default:
      throw new Error(`unknown content-encoding ${encoding}`);
  }
}

function answerError(error: Error, timeoutMs: number) {
  return error.name === 'AbortError' || error.name === 'TimeoutError'
    ? new Error(`no answer within ${timeoutMs} ms`)
    : new Error(`no answer: ${error.message}`);
}

const SNAKE_CASE = /^[a-z]+(_[a-z0-9]+)*$/;

/** What is wrong with an error body: its shape is the contract's for every 4xx. */
function errorBodyProblems(response: FuzzResponse): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(response.body.toString('utf8'));
  } catch {
    return [
      `${response.status} body is not JSON: ${JSON.stringify(preview(response.body.toString('utf8'), 300))}`,
    ];
  }
  const error = isObject(parsed) ? parsed.error : undefined;
  const text = preview(JSON.stringify(parsed), 300);
  if (!isObject(parsed) || Object.keys(parsed).join() !== 'error' || !isObject(error)) {
    return [`${response.status} body is not the error object: ${text}`];
  }
  const problems: string[] = [];
  if (Object.keys(error).sort().join() !== 'code,details,message') {
    problems.push(
      `error has keys ${Object.keys(error).join(', ')}, not code, message, details: ${text}`,
    );
  }
  if (typeof error.code !== 'string' || !SNAKE_CASE.test(error.code)) {
    problems.push(`error.code is not a snake_case string: ${text}`);
  }
  if (typeof error.message !== 'string' || error.message.length === 0) {
    problems.push(`error.message is not a non-empty string: ${text}`);
  }
  if (!Array.isArray(error.details)) problems.push(`error.details is not an array: ${text}`);
  return problems;
}

const isJson = (text: string | undefined) => text !== undefined && jsonOf(text) !== undefined;

/** Control characters, or longer than the contract's bound on webhook_url (docs/API.md). */
const MAX_SANE_URL = 2_048;
const badUrl = (url: unknown) =>
  typeof url === 'string' &&
  ([...url].some((c) => c < ' ' || c === '\u007f') || url.length > MAX_SANE_URL);

function jsonOf(text: string | undefined): unknown {
  try {
    return text === undefined ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

const parsedBody = (request: FuzzRequest) => jsonOf(request.body?.decoded);

/**
 * Everything wrong with an answer, empty when it is fine: never a 5xx; every 4xx the error
 * object; valid JSON never called invalid JSON; a body past the limit, compressed or not,
 * never taken; and what the generator knows a route must refuse, refused.
 */
export function responseProblems(request: FuzzRequest, response: FuzzResponse): string[] {
  const { status } = response;
  const problems: string[] = [];
  const bodyText = preview(response.body.toString('utf8'), 300);
  if (status >= 500 || status < 200) problems.push(`answered ${status}: ${bodyText}`);
  if (status >= 400) problems.push(...errorBodyProblems(response));
  const answer = jsonOf(response.body.toString('utf8')) as
    | { error?: { code?: unknown }; webhook_url?: unknown }
    | undefined;
  const code = status >= 400 ? answer?.error?.code : undefined;
  // Only the route's own body is read: a body sent with a GET is ignored, as HTTP allows.
  const body = request.bodyRead ? request.body : undefined;
  if (body) {
    const mediaJson = /^application\/json(;\s*charset=utf-8)?$/i.test(body.contentType ?? '');
    const decodedSize = body.decoded === undefined ? undefined : Buffer.byteLength(body.decoded);
    const encoded = body.contentEncoding !== undefined && body.contentEncoding !== 'identity';
    if (
      code === 'invalid_json' &&
      mediaJson &&
      decodedSize !== undefined &&
      decodedSize <= MAX_BODY_BYTES &&
      isJson(body.decoded)
    ) {
      problems.push(
        `valid JSON answered invalid_json${encoded ? ` (sent ${body.contentEncoding}, to be decoded or refused with 415)` : ''}: it was parsed wrong`,
      );
    }
    // 413 is the answer; an earlier refusal (the key, the URL) may come first, but a body
    // past the limit must never be read: not taken, not parsed.
    if (
      decodedSize !== undefined &&
      decodedSize > MAX_BODY_BYTES &&
      (status < 300 || code === 'invalid_json')
    ) {
      problems.push(
        `a body past the limit was not answered 413: ${decodedSize} B${encoded ? ` once ${body.contentEncoding}-decoded` : ''} answered ${status} ${String(code ?? '')}`,
      );
    }
  }
  // What was stored, not what was sent: a server may trim a trailing newline.
  const storedUrl = answer?.webhook_url;
  if (request.route.startsWith('PUT /v1/alert-rules') && status < 300 && badUrl(storedUrl)) {
    problems.push(
      `stored a webhook_url with control characters or over ${MAX_SANE_URL} chars: ${String(storedUrl).length} chars, ${JSON.stringify(preview(String(storedUrl), 200))}`,
    );
  }
  if (status >= 200 && status < 300 && status !== 204 && !isJson(response.body.toString('utf8'))) {
    problems.push(`${status} body is not JSON: ${bodyText}`);
  }
  return problems;
}

const SEGMENT_SINGLE_ROUTES = ['track', 'identify', 'page', 'screen', 'alias'];

/**
 * Event ids of a batch the collector answered 202 (POST /v1/events), or of Segment messages
 * it answered 200 (their messageIds; a group message is not stored): each must end up stored.
 */
export function acceptedEventIds(request: FuzzRequest, response: FuzzResponse): string[] {
  if (request.method !== 'POST') return [];
  const route = request.route.slice('POST /v1/'.length);
  if (response.status === 202 && route === 'events') {
    const events = (parsedBody(request) as { events?: unknown } | undefined)?.events;
    if (!Array.isArray(events)) return [];
    return events.flatMap((e) =>
      isObject(e) && typeof e.event_id === 'string' ? [e.event_id] : [],
    );
  }
  if (response.status !== 200) return [];
  const body = parsedBody(request);
  const messages =
    route === 'batch'
      ? (body as { batch?: unknown } | undefined)?.batch
      : SEGMENT_SINGLE_ROUTES.includes(route)
        ? [body]
        : undefined;
  if (!Array.isArray(messages)) return [];
  return messages.flatMap((m) =>
    isObject(m) && typeof m.messageId === 'string' && m.type !== 'group' ? [m.messageId] : [],
  );
}

// ------------------------------------------------------------------ the server around the fuzz

/** Stores the fixture journey and rule again: a previous route may have changed them. */
export async function putFixtures(baseUrl: string, keys: Keys) {
  for (const [path, body] of [
    [`/v1/journeys/${FIXTURE_JOURNEY_ID}`, validJourney],
    [`/v1/alert-rules/${FIXTURE_RULE_ID}`, validAlertRule],
  ] as const) {
    const { status, body: answer } = await callJson(baseUrl, 'PUT', path, body, {
      authorization: `Bearer ${keys.query}`,
    });
    if (status !== 200 && status !== 201)
      throw new Error(`PUT ${path} answered ${status}: ${JSON.stringify(answer)}`);
  }
}

/** Distinct event ids in the store. */
/** Ids of the stored events, and of those an erasure removed (they must not be stored). */
async function storedIds(store: Store): Promise<Set<string>> {
  const rows = await (
    await store.query({
      query:
        'SELECT DISTINCT event_id FROM events UNION DISTINCT SELECT event_id FROM erased_events',
      format: 'JSONEachRow',
    })
  ).json<{ event_id: string }>();
  return new Set(rows.map((r) => r.event_id));
}

/**
 * What is wrong with the server after a fuzz: it must be ready, take a fresh valid event
 * with 202, and have stored every event it answered 202 for unless an erasure removed it
 * (within `waitMs`: on Kafka a 202 means on the topic, not yet in the table).
 */
export async function servingProblems(
  baseUrl: string,
  store: Store,
  keys: Keys,
  accepted: Set<string>,
  { waitMs, timeoutMs }: { waitMs: number; timeoutMs: number },
): Promise<string[]> {
  const problems: string[] = [];
  const ready = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(timeoutMs) }).then(
    async (r) => ({ status: r.status, text: await r.text() }),
    (error: Error) => ({ status: 0, text: error.message }),
  );
  if (ready.status !== 200) problems.push(`GET /readyz answered ${ready.status}: ${ready.text}`);
  const fresh = makeEvent({ timestamp: iso(Date.now() - 60_000) });
  const posted = await fetch(`${baseUrl}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.ingest}` },
    body: JSON.stringify({ events: [fresh] }),
    signal: AbortSignal.timeout(timeoutMs),
  }).then(
    async (r) => ({ status: r.status, text: await r.text() }),
    (error: Error) => ({ status: 0, text: error.message }),
  );
  if (posted.status === 202) accepted.add(fresh.event_id);
  else problems.push(`a fresh valid event answered ${posted.status}: ${posted.text}`);
  const deadline = Date.now() + waitMs;
  let missing: string[] = [];
  for (;;) {
    const stored = await storedIds(store);
    missing = [...accepted].filter((id) => !stored.has(id));
    if (missing.length === 0 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if (missing.length > 0) {
    problems.push(
      `${missing.length} of ${accepted.size} events answered 202 are not stored after ${waitMs} ms, e.g. ${missing
        .slice(0, 5)
        .map((id) => JSON.stringify(preview(id, 80)))
        .join(', ')}`,
    );
  }
  return problems;
}
