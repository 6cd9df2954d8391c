/** Addresses of seeded contacts, spread over a few domains. */
const DOMAINS = ['example.com', 'example.net', 'example.org', 'mail.example.com'];

export function benchAddress(i: number): string {
  return `bench.${i}@${DOMAINS[i % DOMAINS.length]}`;
}
