// Parses each file named on the command line with Mermaid's own parser
// (the `mermaid` package from npm, under a jsdom window: its sanitizer needs
// one). Prints `ok FILE` or `error FILE: MESSAGE` per file; exits 1 if any
// failed. Run with MERMAID_DIR set to the folder where scripts/testbed.sh
// installed mermaid and jsdom.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const require = createRequire(process.env.MERMAID_DIR.replace(/\/?$/, '/'));
const { JSDOM } = require('jsdom');
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import(pathToFileURL(require.resolve('mermaid')).href);
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of process.argv.slice(2)) {
  try {
    await mermaid.parse(readFileSync(file, 'utf8'));
    console.log(`ok ${file}`);
  } catch (e) {
    failed += 1;
    console.log(`error ${file}: ${String(e.message ?? e).split('\n').join(' ')}`);
  }
}
process.exit(failed ? 1 : 0);
