#!/usr/bin/env node
// The `zero-impact` command. Runs the TypeScript sources directly (transpile only; `npm test` type-checks them).
'use strict';
// The AWS SDK warns once that its 2027 releases will need Node 22; this tool pins its SDK and supports Node 20.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  if (String(warning).startsWith('NodeVersionSupportWarning')) return;
  emitWarning(warning, ...rest);
};
require('ts-node').register({ transpileOnly: true, project: require('path').join(__dirname, '..', 'tsconfig.json') });
require('./cli.ts')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
