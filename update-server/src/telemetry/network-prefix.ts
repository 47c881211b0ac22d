import { isIPv4, isIPv6 } from 'node:net';

/**
 * The network an address belongs to, as the canary analysis counts networks: /24 for IPv4 and
 * /48 for IPv6 (what one household, office or small provider block typically holds), IPv4-mapped
 * IPv6 as IPv4. Installs behind one prefix are one source of evidence however many keys they make.
 */
export function networkPrefix(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const v4 = mapped ? mapped[1]! : address;
  if (isIPv4(v4)) return `${v4.split('.').slice(0, 3).join('.')}.0/24`;
  if (isIPv6(address)) return `${expandIPv6(address).slice(0, 3).join(':')}::/48`;
  return 'unknown';
}

/** Eight hextets, each without leading zeros (`2001:db8::1` → 2001, db8, 0, 0, 0, 0, 0, 1). */
function expandIPv6(address: string): string[] {
  const [head, tail] = address.split('%')[0]!.split('::') as [string, string | undefined];
  const part = (s: string | undefined) => (s ? s.split(':') : []);
  const left = part(head);
  const right = part(tail);
  const zeros = tail === undefined ? [] : Array(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((h) =>
    h.includes('.') ? h : Number.parseInt(h, 16).toString(16),
  );
}
