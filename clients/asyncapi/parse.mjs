// parse.mjs: the one place that runs the official AsyncAPI parser, for
// validate.mjs and gen-types.mjs.
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const severities = {
  [DiagnosticSeverity.Error]: "error",
  [DiagnosticSeverity.Warning]: "warning",
  [DiagnosticSeverity.Information]: "info",
  [DiagnosticSeverity.Hint]: "hint",
};

// parseFile parses the AsyncAPI document in file. It prints errors and
// warnings on standard error (information and hints, such as a newer
// AsyncAPI version being out, are not) and returns { document, json, errors }:
// the parsed document (undefined when it could not be parsed), the file's
// own JSON (references unresolved, names kept), and the number of error
// diagnostics.
export async function parseFile(file) {
  const text = await readFile(file, "utf8");
  const { document, diagnostics } = await new Parser().parse(text, { source: file });
  let errors = 0;
  for (const d of diagnostics) {
    if (d.severity === DiagnosticSeverity.Error) errors++;
    if (d.severity !== DiagnosticSeverity.Error && d.severity !== DiagnosticSeverity.Warning) continue;
    const where = d.path && d.path.length ? ` at ${d.path.join(".")}` : "";
    console.error(`${file}: ${severities[d.severity] ?? d.severity}: ${d.code}: ${d.message}${where}`);
  }
  if (!document && errors === 0) errors = 1;
  return { document, json: JSON.parse(text), errors };
}
