// PDF file → its text as pdf.js (the reader in Firefox) extracts it: a JSON array of the page
// texts on stdout, each text item followed by a line break where pdf.js ends a line.
import { readFile } from "node:fs/promises";

// pdf.js reports missing browser features with console.log: keep stdout for the answer
console.log = (...words) => process.stderr.write(words.join(" ") + "\n");
const { getDocument } = await import("pdfjs-dist/legacy/build/pdf.mjs");

const data = new Uint8Array(await readFile(process.argv[2]));
const document = await getDocument({ data, isEvalSupported: false, verbosity: 0 }).promise;
const pages = [];
for (let number = 1; number <= document.numPages; number++) {
  const page = await document.getPage(number);
  const content = await page.getTextContent();
  pages.push(content.items.map((item) => item.str + (item.hasEOL ? "\n" : "")).join(""));
  page.cleanup();
}
await document.destroy();
process.stdout.write(JSON.stringify(pages));
