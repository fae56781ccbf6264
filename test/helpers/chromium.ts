// Headless Chromium for tests that must see a page rendered (reports, score charts). Debian's
// `chromium` package; CI installs it. Returns null when no browser is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';

export function findChromium(): string | null {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    const r = spawnSync('which', [name], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return null;
}

/** Renders an HTML file to a PNG screenshot of the given window size. */
export function screenshot(browser: string, htmlFile: string, pngFile: string, width: number, height: number): void {
  execFileSync(
    browser,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--hide-scrollbars',
      `--window-size=${width},${height}`,
      `--screenshot=${pngFile}`,
      pathToFileURL(htmlFile).href,
    ],
    { stdio: 'ignore', timeout: 60_000 },
  );
}
