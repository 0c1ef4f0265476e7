#!/usr/bin/env node
import { main } from "../dist/compiler/cli.js";

// a reader that went away (`wasmformer generate ... | head`) ends the output, not with a stack trace
process.stdout.on("error", (e) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});
process.exitCode = await main(process.argv.slice(2));
