// validate.mjs DOC: parse an AsyncAPI document with the official parser
// (@asyncapi/parser) and exit 1 on any error diagnostic. Warnings and
// hints are printed and do not fail.
//
//   node validate.mjs ../../docs/asyncapi.json
import { parseFile } from "./parse.mjs";

const file = process.argv[2];
if (!file || process.argv.length > 3) {
  console.error("usage: node validate.mjs DOC");
  process.exit(2);
}
const { document, errors } = await parseFile(file);
if (errors > 0) {
  console.error(`${file}: ${errors} error(s): not a valid AsyncAPI document`);
  process.exit(1);
}
console.log(
  `${file}: valid AsyncAPI ${document.version()}: ${document.channels().length} channel(s), ` +
    `${document.operations().length} operation(s), ${document.messages().length} message(s)`,
);
