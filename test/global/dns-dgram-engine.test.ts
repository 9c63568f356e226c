// The DNS test files again with dns.udp_engine: dgram. Run by themselves they use the
// default (auto: the native batch engine where it built), so every answer they check is
// checked on both engines: ECS, TC and the TCP retry, NXDOMAIN/REFUSED/FORMERR, garbage,
// RRL, health changes seen in the next answer, several sockets.
process.env['MERIDIAN_TEST_UDP_ENGINE'] = 'dgram';
await import('./dns.test.js');
await import('./dns-fast-path.test.js');
await import('./dns-rrl.test.js');
await import('./dns-sockets.test.js');
await import('./dig.test.js');
await import('./absorbed-errors.test.js');
