// The setup flow in headless Chromium at a phone's size, against `cargo xtask portal` or the
// lx106 firmware under QEMU behind the espconn bridge.
//
//   node portal.mjs <portal url> <screenshot dir> [<host>=<address:port>]
//
// The optional mapping sends every request for <host> to <address:port> (Chromium's host
// resolver rules): the firmware's portal answers only to its own address, 192.168.4.1, as on
// the device, while the bridge listens on a loopback port.
// JavaScript is disabled in the page (the portal must work without it), and every request
// that would leave the portal's host fails the test (the page must be self-contained).
// Steps: the form (screenshot 01), an empty passphrase on a secured network (04, the error
// keeps the choice), a wrong passphrase followed through the self-refreshing status page
// (02), a hidden network by name that is not there (05), a form too large for the device
// (06, the 413 page), a name over 32 bytes refused by the page's script in a second context
// with JavaScript on, then the right one (03). Exits non-zero with a message on the first
// failed check.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [url, outDir, hostMap] = process.argv.slice(2);
if (!url || !outDir) {
  console.error('usage: node portal.mjs <portal url> <screenshot dir> [<host>=<address:port>]');
  process.exit(2);
}
const args = ['--no-sandbox'];
if (hostMap) {
  const [host, target] = hostMap.split('=');
  args.push(`--host-resolver-rules=MAP ${host} ${target}`);
}
mkdirSync(outDir, { recursive: true });
const origin = new URL(url).origin;

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args,
});
try {
  const context = await browser.newContext({
    viewport: { width: 360, height: 740 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    javaScriptEnabled: false,
  });
  const page = await context.newPage();
  const foreign = [];
  await page.route('**/*', (route) => {
    const target = route.request().url();
    if (!target.startsWith(origin)) {
      foreign.push(target);
      return route.abort();
    }
    return route.continue();
  });

  // 1. The form.
  const response = await page.goto(url);
  check(response.status() === 200, `GET / answered ${response.status()}`);
  const html = await response.body();
  check(html.length <= 8192, `the page is ${html.length} bytes, over 8 KiB`);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 360, `the page is ${width} px wide on a 360 px screen`);
  const names = await page.locator('label.n .s').allTextContents();
  check(names[0] === 'Garden', `strongest network first, got ${JSON.stringify(names)}`);
  check(names.filter((n) => n === 'Garden').length === 1, 'duplicate Garden entries merged');
  check(names.includes('<b>&"x"'), 'the hostile name is shown as text');
  await page.screenshot({ path: `${outDir}/01-form.png`, fullPage: true });

  // 4. Empty passphrase on a secured network: the error, with the choice kept.
  await page.locator('label.n', { hasText: 'Garden' }).click();
  await page.locator('button[type=submit]').click();
  await page.waitForLoadState();
  check(
    (await page.locator('.err').textContent()).includes('needs its passphrase'),
    'no error for an empty passphrase'
  );
  check(
    await page.locator('label.n', { hasText: 'Garden' }).locator('input').isChecked(),
    'the chosen network was not kept'
  );
  await page.screenshot({ path: `${outDir}/04-error.png`, fullPage: true });

  // 2. A wrong passphrase: the status page refreshes itself until the answer is there.
  await page.fill('#pass', 'wrong horse battery');
  await page.locator('button[type=submit]').click();
  await page.waitForURL('**/status');
  check((await page.textContent('h1')).includes('Connecting to Garden'), 'no connecting page');
  await page.waitForSelector('text=refused the passphrase', { timeout: 15000 });
  check(!(await page.content()).includes('wrong horse'), 'the passphrase was echoed');
  await page.screenshot({ path: `${outDir}/02-wrong.png`, fullPage: true });

  // 5. A hidden network by name, which is not around: the choice and the name come back.
  await page.click('a.btn');
  await page.waitForURL(origin + '/');
  await page.locator('input[name=net][value=other]').check();
  await page.fill('input[name=other]', 'Hidden Pond');
  await page.fill('#pass', 'a hidden passphrase');
  await page.locator('button[type=submit]').click();
  await page.waitForURL('**/status');
  await page.waitForSelector('text=was not found', { timeout: 20000 });
  check(!(await page.content()).includes('a hidden passphrase'), 'the passphrase was echoed');
  await page.screenshot({ path: `${outDir}/05-not-found.png`, fullPage: true });

  // 6. A form too large for the device (only reachable without the page's script, which
  // checks the name in bytes): a mobile page in the portal's look, with a way back.
  await page.click('a.btn');
  await page.waitForURL(origin + '/');
  await page.locator('input[name=net][value=other]').check();
  await page.fill('input[name=other]', '\u{1F33B}'.repeat(90));
  await page.fill('#pass', 'a'.repeat(63));
  await page.locator('button[type=submit]').click();
  await page.waitForLoadState();
  check((await page.textContent('h1')).includes('413'), 'no 413 page for an oversize form');
  check(
    (await page.locator('.err').textContent()).includes('too long for the device'),
    'the 413 page does not say what to do'
  );
  const errorWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  check(errorWidth <= 360, `the 413 page is ${errorWidth} px wide on a 360 px screen`);
  check(
    (await page.locator('meta[name=viewport]').count()) === 1,
    'the 413 page has no viewport'
  );
  check((await page.locator('a.btn').textContent()).includes('Back to the form'), 'no way back');
  await page.screenshot({ path: `${outDir}/06-too-large.png`, fullPage: true });

  // 7. With the page's script (as on a phone), a name of 20 two-byte characters (40 bytes,
  // under a 32-character limit) is refused before it is sent.
  const scripted = await browser.newContext({
    viewport: { width: 360, height: 740 },
    isMobile: true,
    hasTouch: true,
  });
  const phone = await scripted.newPage();
  await phone.goto(url);
  await phone.locator('input[name=net][value=other]').check();
  await phone.locator('input[name=other]').pressSequentially('\u00e9'.repeat(20));
  const valid = await phone.locator('input[name=other]').evaluate((e) => e.checkValidity());
  check(!valid, 'a 40-byte name passes the browser');
  await phone.fill('#pass', 'a hidden passphrase');
  await phone.locator('button[type=submit]').click();
  await phone.waitForTimeout(300);
  check(phone.url() === url, `a 40-byte name was sent (now at ${phone.url()})`);
  await scripted.close();

  // 3. The right passphrase (from the 413 page's way back: without a script, the form).
  await page.click('a.btn');
  await page.waitForURL(origin + '/');
  await page.locator('label.n', { hasText: 'Garden' }).click();
  await page.fill('#pass', 'correct horse battery');
  // The broker the sensor reports to (its password typed like the WiFi passphrase).
  await page.fill('#mqtt', 'broker.lan');
  await page.fill('#muser', 'garden');
  await page.fill('#mpass', 'walk broker password');
  await page.fill('#period', '15');
  await page.locator('button[type=submit]').click();
  await page.waitForSelector('text=192.168.1.57', { timeout: 15000 });
  check(!(await page.content()).includes('walk broker password'), 'the MQTT password was echoed');
  check((await page.textContent('h1')).includes('Connected'), 'no connected page');
  await page.screenshot({ path: `${outDir}/03-connected.png`, fullPage: true });

  check(foreign.length === 0, `requests left the portal: ${foreign.join(', ')}`);
  console.log(`browser: setup flow passed; screenshots in ${outDir}`);
} finally {
  await browser.close();
}
