// napi-rs's name of this platform (`linux-x64-gnu`, `darwin-arm64`, …), worked out here
// independently of lib/index.js so that the tests check what its errors name.
import { readFileSync } from 'node:fs';

export function platformName() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const glibc = process.report.getReport().header.glibcVersionRuntime !== undefined;
    let musl;
    try {
      musl = readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
    } catch {
      musl = !glibc;
    }
    const libc = musl ? 'musl' : 'gnu';
    return arch === 'arm' ? `linux-arm-${libc}eabihf` : `linux-${arch}-${libc}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}
