// Alertmanager identifies an alert by prometheus/common's LabelSet.Fingerprint: FNV-1a 64 over
// the label names in sorted order, each name and value followed by the separator byte 0xff.
// Computed in two 32-bit halves: BigInt per byte is an order of magnitude slower.

const SEPARATOR = 0xff;
const encoder = new TextEncoder();

interface Fnv64 {
  hi: number;
  lo: number;
}

// FNV-64 prime 0x100000001b3 = 2^40 + 0x1b3.
function mixByte(state: Fnv64, byte: number): void {
  const lo = (state.lo ^ byte) >>> 0;
  const hi = state.hi;
  // (hi * 2^32 + lo) * (2^40 + 0x1b3) mod 2^64
  const loProduct = lo * 0x1b3; // < 2^41: exact
  const loLow = loProduct % 0x100000000;
  const carry = Math.floor(loProduct / 0x100000000);
  const hiProduct = (Math.imul(hi, 0x1b3) >>> 0) + carry + ((lo << 8) >>> 0); // lo * 2^40 lands in hi as lo << 8
  state.lo = loLow >>> 0;
  state.hi = hiProduct >>> 0;
}

function mixString(state: Fnv64, text: string): void {
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    for (let i = 0; i < text.length; i++) mixByte(state, text.charCodeAt(i));
  } else {
    for (const byte of encoder.encode(text)) mixByte(state, byte);
  }
}

export function fingerprintOf(labels: Record<string, string>): string {
  const state: Fnv64 = { hi: 0xcbf29ce4, lo: 0x84222325 };
  const names = Object.keys(labels).sort();
  for (const name of names) {
    mixString(state, name);
    mixByte(state, SEPARATOR);
    mixString(state, labels[name]!);
    mixByte(state, SEPARATOR);
  }
  return state.hi.toString(16).padStart(8, '0') + state.lo.toString(16).padStart(8, '0');
}
