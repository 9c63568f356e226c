/** Byte classes of RFC 9110 / 9112, as lookup tables: one indexed load per byte on the hot path. */

export const CR = 13;
export const LF = 10;
export const SP = 32;
export const HTAB = 9;
export const COLON = 58;
export const SEMICOLON = 59;

/** RFC 9110 §5.6.2 tchar: header names and methods are 1*tchar. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 48; c <= 57; c++) TCHAR[c] = 1;
for (let c = 65; c <= 90; c++) TCHAR[c] = TCHAR[c + 32] = 1;

/**
 * RFC 9110 §5.5 field-value bytes: VCHAR, obs-text, SP and HTAB. No other control byte
 * (NUL, a bare CR, DEL) is accepted anywhere in a value.
 */
export const FIELD_VCHAR = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) FIELD_VCHAR[c] = 1;
for (let c = 0x80; c <= 0xff; c++) FIELD_VCHAR[c] = 1;
FIELD_VCHAR[SP] = FIELD_VCHAR[HTAB] = 1;

/**
 * Request-target bytes: visible ASCII only (RFC 3986 characters and the few others
 * clients send unescaped). Controls, SP, DEL and any byte over 0x7e are refused, which
 * is what Node's strict parser does too.
 */
export const TARGET_CHAR = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET_CHAR[c] = 1;

/** Hex digit values + 1 (0: not a hex digit). */
export const HEX = new Uint8Array(256);
for (let c = 0; c < 16; c++) HEX['0123456789abcdef'.charCodeAt(c)] = HEX['0123456789ABCDEF'.charCodeAt(c)] = c + 1;

/**
 * A name as bytes, lower case, for bytesNamed. Bytes rather than a string: a string
 * method's lookup (`charCodeAt`) turned out a generic inline-cache call per character in
 * the proxy's optimised code, which an indexed load of a typed array is not.
 */
export function lowerBytes(name: string): Uint8Array {
  return new Uint8Array(Buffer.from(name.toLowerCase(), 'latin1'));
}

/**
 * The bytes b[start, end) (a field name or value) are `lower` in any case, compared in the
 * buffer: no string is made or read. `lower` holds only lower-case letters, digits and
 * '-': c | 0x20 maps an upper-case letter to its lower case, and makes a digit or '-' only
 * of itself or of a control byte (CR, 0x10-0x19), which no field name or value holds.
 */
export function bytesNamed(b: Uint8Array, start: number, end: number, lower: Uint8Array): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if (((b[start + i] as number) | 0x20) !== lower[i]) return false;
  return true;
}
