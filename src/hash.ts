import * as crypto from 'node:crypto';

/** SHA-256 as hex. One-shot crypto.hash (node ≥ 20.12) where there is one: a Hash object per call costs more than the hashing. */
export const sha256Hex: (data: string | Buffer) => string =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('sha256', data, 'hex')
    : (data) => crypto.createHash('sha256').update(data).digest('hex');
