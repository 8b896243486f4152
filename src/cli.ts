#!/usr/bin/env node
// The `bayesgpu` command (package.json "bin"); the commands live in cli/main.ts.
import { main } from './cli/main.js';

// dawn.node keeps the event loop alive: exit deliberately once the device is destroyed.
main(process.argv.slice(2)).then((code) => process.exit(code));
