// A port on 127.0.0.1 that never completes a TCP handshake (test/fixtures/blackhole.py),
// for tests of connect timeouts: nothing leaves loopback.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const python3 = spawnSync('python3', ['--version']).status === 0;

export async function blackhole(): Promise<{ port: number; close(): Promise<void> }> {
  const script = fileURLToPath(new URL('../../../test/fixtures/blackhole.py', import.meta.url));
  const child = spawn('python3', [script, '60'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`blackhole.py exited (${code})`)));
  });
  return {
    port,
    close: async () => {
      child.kill('SIGKILL');
    },
  };
}
