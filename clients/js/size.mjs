// The client's size as a browser downloads it: minified (esbuild) and
// gzipped (level 9). `npm run size`; the README quotes what it prints.
import { buildSync } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';

for (const file of ['ringcast.js', 'react.js']) {
  const raw = readFileSync(new URL(file, import.meta.url));
  const min = buildSync({ entryPoints: [new URL(file, import.meta.url).pathname], bundle: false,
    minify: true, format: 'esm', write: false }).outputFiles[0].contents;
  const gz = gzipSync(min, { level: 9 });
  console.log(`${file}: ${raw.length} bytes, minified ${min.length}, minified and gzipped ${gz.length}`);
}
