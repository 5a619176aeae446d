/**
 * Debian's Chromium (scripts/test-deps.sh installs it), driven by playwright-core: no browser is
 * downloaded, and nothing it does leaves the machine.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { REPO_ROOT } from './receiver.js';

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];

/** Where the browser tests leave what a person looks at afterwards (screenshots). */
export const TEST_OUTPUT = join(REPO_ROOT, 'test-output');

export function outputPath(...parts: string[]): string {
  const path = join(TEST_OUTPUT, ...parts);
  mkdirSync(join(path, '..'), { recursive: true });
  return path;
}

export async function launchChromium(): Promise<Browser> {
  const executablePath = CANDIDATES.find((candidate) => candidate && existsSync(candidate));
  if (!executablePath) throw new Error('no Chromium: install it (apt-get install chromium) or set CHROMIUM_PATH');
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      // As root (CI) Chromium's sandbox cannot start; the page under test is our own.
      '--no-sandbox',
      '--disable-gpu',
      // A container's /dev/shm is often 64 MB, too small for Chromium's shared memory.
      '--disable-dev-shm-usage',
      // Without these Chromium reaches for Google's services at every start, which this closed
      // network refuses.
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
    ],
  });
}
