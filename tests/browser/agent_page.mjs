// agent_page.mjs - what an agent and an ops person see, in headless Chromium.
//
// usage: node agent_page.mjs BASE_URL TOKEN TRACKING_NUMBER ARTIFACT_DIR
// Signs in with TOKEN (an admin token: it may see both pages), searches the
// tracking number of the seeded demo shipment (tests/fixtures/api/seed.sql),
// asserts what a person reads on the page, checks that neither page scrolls
// sideways at phone width (390 px) or at 1280 px, and saves screenshots to
// ARTIFACT_DIR. Uses Debian's /usr/bin/chromium; playwright-core downloads
// no browser. Exit 0 when every check passed, 1 otherwise.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, token, tracking, artifacts] = process.argv.slice(2);
if (!base || !token || !tracking || !artifacts) {
  console.error('usage: node agent_page.mjs BASE_URL TOKEN TRACKING_NUMBER ARTIFACT_DIR');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const failures = [];
// Pixels the page, or the widest card inside it, would scroll sideways.
const overflow = () => Math.max(document.documentElement.scrollWidth - window.innerWidth,
  ...[...document.querySelectorAll('.card')].map((c) => c.scrollWidth - c.clientWidth));
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

const profile = mkdtempSync(join(tmpdir(), 'st-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
});
let dialogs = 0;
const external = [];
try {
  const page = context.pages()[0] || await context.newPage();
  page.on('dialog', async (d) => { dialogs++; await d.dismiss(); });
  page.on('request', (r) => { if (!r.url().startsWith(base)) external.push(r.url()); });

  // sign in through the form; the cookie carries the token from here on
  await page.goto(`${base}/agent`);
  check(await page.locator('input[name="token"]').isVisible(), 'the agent page asks for a token first');
  await page.fill('input[name="token"]', token);
  await Promise.all([page.waitForURL(`${base}/agent`), page.click('button[type="submit"]')]);

  // search the demo shipment
  await page.fill('input[name="q"]', tracking);
  await Promise.all([page.waitForURL(/\/agent\?q=/), page.click('form[role="search"] button')]);
  const text = async (sel) => (await page.locator(sel).innerText()).replace(/\s+/g, ' ');

  const summary = await text('#summary');
  check(summary.includes(tracking), 'the tracking number heads the page');
  check((await text('#status .badge')) === 'held', 'status badge says "held"');
  check(summary.includes('ORD-1001') && summary.includes('CN → DE'), 'order and route shown');
  check(summary.includes('lena.berger@example.com'), 'the agent sees the recipient');

  const customs = await text('#customs');
  check(customs.includes('Held at customs'), 'customs panel: held');
  check(customs.includes('Reason Documents required'), 'customs panel: the reason');
  check(customs.includes('Who must act Recipient'), 'customs panel: who must act');
  check(/Since \d{4}-\d\d-\d\d \d\d:\d\d UTC/.test(customs), 'customs panel: since when (UTC)');

  const timeline = await text('#timeline');
  check(timeline.includes('Clearance delay: documents required from the recipient (commercial invoice)'),
        "the carrier's raw words");
  check(timeline.includes('Arrived at <b>Leipzig</b> hub <script>alert("x")</script>'),
        'markup in carrier text is shown as text');
  check(await page.locator('main script, main b').count() === 0, '... and never becomes markup');
  check(/Local \d{4}-\d\d-\d\d \d\d:\d\d/.test(timeline), 'local time of each event');
  check(/\d{4}-\d\d-\d\d \d\d:\d\d UTC/.test(timeline), 'UTC time of each event');
  check(await page.locator('#timeline li.event').count() === 3, 'three events');

  check(await page.locator('#edd tbody tr').count() === 2, 'estimated-date history: two estimates');
  check((await text('#edd')).includes('customs hold: documents required'), 'why the estimate moved');
  const notes = await text('#notifications');
  check(notes.includes('customs held') && notes.includes('sent') && notes.includes('deferred')
        && notes.includes('quiet hours'), 'notifications and their outcome');

  for (const width of [390, 1280]) {
    await page.setViewportSize({ width, height: 900 });
    const over = await page.evaluate(overflow);
    check(over <= 0, `agent page: no horizontal scrolling at ${width} px (overflow ${over} px)`);
    await page.screenshot({ path: join(artifacts, `agent-page-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: join(artifacts, 'agent-page.png'), fullPage: true });

  // the ops board links back to timelines and shows no personal data
  await page.goto(`${base}/ops`);
  const board = await text('main');
  check(board.includes('Stuck parcels (2)') && board.includes('1Z999AA10123456784'), 'ops board: stuck parcels');
  check(board.includes('ups US → FR'), 'ops board: grouped by carrier and lane');
  check(!board.includes('@') && !board.includes('+4915'), 'ops board: no personal data');
  for (const width of [390, 1280]) {
    await page.setViewportSize({ width, height: 900 });
    const over = await page.evaluate(overflow);
    check(over <= 0, `ops board: no horizontal scrolling at ${width} px (overflow ${over} px)`);
  }
  await page.screenshot({ path: join(artifacts, 'ops-board.png'), fullPage: true });
  await page.click('a[href="/agent?id=1"]');
  check((await text('#summary')).includes(tracking), 'ops board links to the timeline page');

  check(dialogs === 0, 'no script ran (no dialogs)');
  check(external.length === 0, `no external resources (${external.join(', ')})`);
} catch (e) {
  failures.push(String(e));
  console.error(e);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(failures.length ? `${failures.length} check(s) failed` : 'all checks passed');
process.exit(failures.length ? 1 : 0);
