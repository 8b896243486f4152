#!/usr/bin/env node
// The `bayesgpu` command (package.json "bin"); cli/main.ts dispatches to the commands (cli/train.ts,
// cli/eval.ts, cli/predict.ts) and prints their help (`bayesgpu --help`). Its exit codes:
// 0 success, 2 bad arguments or input files, 1 a failure while running, 130/143 SIGINT/SIGTERM.
import { main } from './cli/main.js';

// dawn.node keeps the event loop alive: exit deliberately once the device is destroyed.
main(process.argv.slice(2), { signals: process }).then((code) => process.exit(code));
