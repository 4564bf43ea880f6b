/**
 * The folders depend one way: lib/ (the CDK app) may import the domain, never the reverse. The configuration schema
 * lives in lambdas/shared/domain/config.ts (lib/config.ts re-exports it), so no file under lambdas/ needs lib/.
 * Imports are read with TypeScript's own pre-processor (static, dynamic and require), then resolved on disk.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import * as ts from 'typescript';

const ROOT = resolve(__dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Relative imports of a file, as paths from the repository root. */
function relativeImports(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles
    .map((imported) => imported.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) =>
      relative(ROOT, resolve(dirname(file), name))
        .split(sep)
        .join('/'),
    );
}

function importsUnder(folder: string, forbidden: string): string[] {
  return sources(join(ROOT, folder)).flatMap((file) =>
    relativeImports(file)
      .filter((target) => target === forbidden || target.startsWith(`${forbidden}/`))
      .map((target) => `${relative(ROOT, file).split(sep).join('/')} imports ${target}`),
  );
}

describe('layout', () => {
  it('lambdas/shared/domain never imports from lib/', () => {
    expect(importsUnder('lambdas/shared/domain', 'lib')).toEqual([]);
  });

  it('no file under lambdas/ imports from lib/ (the schema is the domain module)', () => {
    expect(importsUnder('lambdas', 'lib')).toEqual([]);
  });

  it('sees an import of lib/ where there is one (the check can fail)', () => {
    expect(relativeImports(join(ROOT, 'lib', 'zero-impact-stack.ts')).some((t) => t.startsWith('lib/'))).toBe(true);
    expect(relativeImports(join(ROOT, 'lib', 'config.ts'))).toEqual(['lambdas/shared/domain/config']);
  });
});
