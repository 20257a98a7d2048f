#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools/trace-screenshot.sh TRACE.json OUT.png [WIDTH] — renders a WEFT_TRACE
# file in the Catapult trace viewer (the chrome://tracing front end) in
# headless Chromium and saves the timeline as a PNG.
#
# The viewer comes from Debian's Go sources (golang-src ships it for `go
# tool trace`), the browser is Debian's chromium, driven by puppeteer-core
# from npm (installed into tools/.trace-screenshot, never downloading a
# browser of its own). What is missing is installed (apt-get needs root).
# The page, the viewer and the trace are served from 127.0.0.1: nothing is
# fetched from elsewhere while rendering.
set -euo pipefail

PUPPETEER=puppeteer-core@24.43.1 # the newest line that runs on Debian's node 18+

die() { echo "trace-screenshot: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: $0 TRACE.json OUT.png [WIDTH]"
TRACE=$(realpath "$1") || die "no trace file $1"
OUT=$(realpath -m "$2")
WIDTH=${3:-1400}
DEPS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/.trace-screenshot

apt_install() {
    [ "$(id -u)" = 0 ] || die "missing $*: install it (as root)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null &&
          apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } ||
        die "apt-get install $* failed"
}
viewer_html() {
    find /usr/share/go* /usr/lib/go* -name trace_viewer_full.html \
        -path '*trace*static*' 2>/dev/null | sort -V | tail -n 1
}

command -v chromium >/dev/null || apt_install chromium fonts-liberation
command -v node >/dev/null || apt_install nodejs
command -v npm >/dev/null || apt_install npm
[ -n "$(viewer_html)" ] || apt_install golang-src
VIEWER=$(dirname "$(viewer_html)")
[ -f "$VIEWER/webcomponents.min.js" ] || die "no trace viewer in $VIEWER"
if [ ! -d "$DEPS/node_modules/puppeteer-core" ]; then
    PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix "$DEPS" --no-audit \
        --no-fund --loglevel=error "$PUPPETEER" >&2 || die "npm install failed"
fi

export NODE_PATH=$DEPS/node_modules
exec node - "$TRACE" "$OUT" "$VIEWER" "$(command -v chromium)" "$WIDTH" <<'JS'
'use strict';
const http = require('http'), fs = require('fs'), path = require('path');
const puppeteer = require('puppeteer-core');
const [trace, out, viewer, chromium, width] = process.argv.slice(2);
const fail = (m) => { console.error('trace-screenshot: ' + m); process.exit(1); };
setTimeout(() => fail('timed out'), 120000).unref();

// The page: the viewer's documented embedding (a tr-ui-timeline-view fed a
// tr.Model imported from the trace's text).
const PAGE = `<!doctype html><html><head><meta charset="utf-8">
<script src="/viewer/webcomponents.min.js"></script>
<link rel="import" href="/viewer/trace_viewer_full.html">
<style>html,body{margin:0;height:100%;overflow:hidden}
#tv{height:100%;width:100%;display:flex;flex-direction:column}
#polyfill-warning,#drag_handle,#analysis,#hint_text,
tr-ui-b-mouse-mode-selector{display:none !important}</style></head><body>
<script>
addEventListener('WebComponentsReady', () => { window.ready = true; });
window.show = async () => {
  const text = await (await fetch('/trace.json')).text();
  const tv = document.createElement('tr-ui-timeline-view');
  const box = document.createElement('track-view-container');
  box.id = 'track_view_container';
  tv.track_view_container = box;
  Polymer.dom(tv).appendChild(box);
  tv.id = 'tv';
  tv.globalMode = true;
  Polymer.dom(document.body).appendChild(tv);
  const model = new tr.Model();
  await new tr.importer.Import(model).importTracesWithProgressDialog([text]);
  tv.model = model;
  tv.viewTitle = ${JSON.stringify(path.basename(trace))};
  await new Promise((r) => setTimeout(r, 500)); // let the tracks lay out
  let bottom = 0; // the height that shows every track
  // (a NodeList under the polyfill is not iterable)
  Array.prototype.forEach.call(
    document.querySelectorAll('#track_view_container .model-track'), (t) => {
      bottom = Math.max(bottom, t.getBoundingClientRect().top + t.scrollHeight);
    });
  return Math.ceil(bottom + 16);
};
</script></body></html>`;

const server = http.createServer((req, res) => {
  const url = decodeURIComponent(req.url.split('?')[0]);
  let file = null;
  if (url === '/') return res.end(PAGE);
  if (url === '/trace.json') file = trace;
  else if (url.startsWith('/viewer/'))
    file = path.join(viewer, path.basename(url));
  if (!file) { res.writeHead(404); return res.end(); }
  fs.readFile(file, (err, data) => {
    if (err) { res.writeHead(404); return res.end(); }
    res.writeHead(200, {'Content-Type': file.endsWith('.html') ? 'text/html'
                        : file.endsWith('.js') ? 'text/javascript'
                        : 'application/json'});
    res.end(data);
  });
});

(async () => {
  try { JSON.parse(fs.readFileSync(trace, 'utf8')); }
  catch (e) { fail(`${trace}: not JSON: ${e.message}`); }
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const browser = await puppeteer.launch({
    executablePath: chromium, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
           '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--hide-scrollbars'],
  });
  const errors = [];
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.setViewport({width: +width, height: 700});
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.waitForFunction('window.ready === true', {timeout: 60000});
    const height = await page.evaluate(() => window.show());
    await page.setViewport({width: +width, height: Math.min(Math.max(height, 200), 8000)});
    await page.evaluate(() => dispatchEvent(new Event('resize')));
    await new Promise((r) => setTimeout(r, 500));
    await page.screenshot({path: out});
  } finally {
    await browser.close();
    server.close();
  }
  if (errors.length) fail('the viewer reported: ' + errors.join('; '));
  console.error('trace-screenshot: wrote ' + out);
})().catch((e) => fail(e.stack || e));
JS
