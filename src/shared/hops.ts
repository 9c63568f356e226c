/**
 * Names the Meridians a request crossed regions through (`a, b`): a request that carries
 * it is never sent to another region again, which is what stops forwarding loops. The
 * proxy appends to it; health and region probes of another region's Meridian carry it so
 * that Meridian answers for its own region only. Here, below both, so neither imports the other.
 */
export const HOPS_HEADER = 'x-meridian-hops';
