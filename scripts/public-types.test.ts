/**
 * Type tests of every package's public API (issue 30): each package's built entry points
 * (`exports` with types in its package.json) are loaded by the TypeScript compiler as a
 * consumer would, and no exported function, class, interface, type or constant may expose
 * `any` (DESIGN.md: no `any` in public types) in a parameter, a return type, a property or a
 * type argument. Members inherited from other libraries' declarations are not ours to check.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** `[package name, declaration file]` of every exported entry point with types. */
function entryPoints(): [string, string][] {
  const out: [string, string][] = [];
  for (const folder of readdirSync(join(root, 'packages'))) {
    const manifest = join(root, 'packages', folder, 'package.json');
    if (!existsSync(manifest)) continue;
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as {
      name: string;
      private?: boolean;
      exports?: Record<string, string | { types?: string }>;
    };
    if (pkg.private) continue;
    for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
      const types = typeof target === 'string' ? undefined : target.types;
      if (!types) continue;
      out.push([
        `${pkg.name}${subpath === '.' ? '' : subpath.slice(1)}`,
        join(root, 'packages', folder, types),
      ]);
    }
  }
  return out;
}

/** The lib's iterator types, whose return and next type arguments default to any. */
const ITERATOR_TYPES = new Set([
  'Iterable',
  'Iterator',
  'IterableIterator',
  'IteratorObject',
  'ArrayIterator',
  'MapIterator',
  'SetIterator',
  'StringIterator',
  'Generator',
  'AsyncIterable',
  'AsyncIterator',
  'AsyncIterableIterator',
  'AsyncGenerator',
]);

/** Where `any` appears in the public surface of `files` (one line per finding). */
export function anyInPublicTypes(files: readonly string[], host?: ts.CompilerHost): string[] {
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    types: ['node'],
  };
  const program = ts.createProgram(files, options, host);
  const checker = program.getTypeChecker();
  const ours = (d: ts.Declaration): boolean =>
    !d.getSourceFile().fileName.includes('/node_modules/');
  const findings: string[] = [];

  /** `any` in `type` itself, its union members, index signatures or type arguments. */
  const hasAny = (type: ts.Type, depth = 0): boolean => {
    if (depth > 4) return false;
    if (type.flags & ts.TypeFlags.Any) return true;
    if (type.isUnionOrIntersection()) return type.types.some((t) => hasAny(t, depth + 1));
    if (!(type.flags & ts.TypeFlags.Object)) return false;
    if (checker.getIndexInfosOfType(type).some((info) => hasAny(info.type, depth + 1))) return true;
    if (!((type as ts.ObjectType).objectFlags & ts.ObjectFlags.Reference)) return false;
    const reference = type as ts.TypeReference;
    const args = checker.getTypeArguments(reference);
    // The lib's iterator types default their return and next types to any
    // (`IterableIterator<T>`): only the element type is ours.
    const target = reference.target.symbol;
    const iterator =
      ITERATOR_TYPES.has(target?.name ?? '') &&
      (target?.declarations ?? []).some((d) =>
        program.isSourceFileDefaultLibrary(d.getSourceFile()),
      );
    return (iterator ? args.slice(0, 1) : args).some((t) => hasAny(t, depth + 1));
  };
  const checkSignature = (where: string, signature: ts.Signature): void => {
    for (const parameter of signature.getParameters()) {
      const declaration = parameter.valueDeclaration;
      if (!declaration || !ours(declaration)) continue;
      if (hasAny(checker.getTypeOfSymbolAtLocation(parameter, declaration)))
        findings.push(`${where}: parameter ${parameter.name} is any`);
    }
    if (hasAny(signature.getReturnType())) findings.push(`${where}: returns any`);
  };
  const checkType = (where: string, type: ts.Type, at: ts.Node): void => {
    for (const signature of [...type.getCallSignatures(), ...type.getConstructSignatures()])
      checkSignature(where, signature);
    for (const property of type.getProperties()) {
      const declaration = property.valueDeclaration ?? property.declarations?.[0];
      if (!declaration || !ours(declaration)) continue;
      if (ts.getCombinedModifierFlags(declaration) & ts.ModifierFlags.Private) continue;
      const propertyType = checker.getTypeOfSymbolAtLocation(property, at);
      if (hasAny(propertyType)) findings.push(`${where}.${property.name} is any`);
      for (const signature of propertyType.getCallSignatures())
        checkSignature(`${where}.${property.name}`, signature);
    }
  };

  for (const file of files) {
    const source = program.getSourceFile(file);
    if (!source) throw new Error(`cannot load ${file}`);
    const module = checker.getSymbolAtLocation(source);
    if (!module) continue;
    for (const exported of checker.getExportsOfModule(module)) {
      const symbol =
        exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const declaration = symbol.declarations?.[0];
      if (!declaration || !ours(declaration)) continue;
      const where = `${exported.name}`;
      if (
        symbol.flags &
        (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias | ts.SymbolFlags.Class)
      ) {
        const declared = checker.getDeclaredTypeOfSymbol(symbol);
        if (hasAny(declared)) findings.push(`${where} is any`);
        checkType(where, declared, declaration);
      }
      if (
        symbol.flags &
        (ts.SymbolFlags.Function | ts.SymbolFlags.Variable | ts.SymbolFlags.Class)
      ) {
        const valueType = checker.getTypeOfSymbolAtLocation(symbol, declaration);
        if (hasAny(valueType)) findings.push(`${where} is any`);
        checkType(where, valueType, declaration);
      }
    }
  }
  return [...new Set(findings)];
}

describe('public types', () => {
  const entries = entryPoints();

  it('finds every package entry point, built', () => {
    expect(entries.length).toBeGreaterThanOrEqual(12);
    for (const [name, file] of entries) expect(existsSync(file), `${name}: ${file}`).toBe(true);
  });

  it('no exported function, class, interface, type or constant exposes any', () => {
    const findings = anyInPublicTypes(entries.map(([, file]) => file));
    expect(findings).toEqual([]);
  }, 120_000);

  it('the check has teeth', () => {
    const file = join(root, 'virtual-public-api.d.ts');
    const text = [
      'export declare function parse(input: any): void;',
      'export interface Options { readonly values: Promise<any[]>; readonly fine: unknown }',
      'export declare class Model { score(users: Int32Array): any; private secret: any }',
      'export type Loose = Record<string, any>;',
      'export declare const ok: (x: number) => string;',
    ].join('\n');
    const host = ts.createCompilerHost({});
    const read = host.readFile.bind(host);
    const exists = host.fileExists.bind(host);
    const getSource = host.getSourceFile.bind(host);
    host.readFile = (f) => (f === file ? text : read(f));
    host.fileExists = (f) => f === file || exists(f);
    host.getSourceFile = (f, v, ...rest) =>
      f === file ? ts.createSourceFile(f, text, v) : getSource(f, v, ...rest);
    expect(anyInPublicTypes([file], host).sort()).toEqual(
      [
        'Loose is any',
        'Model.score: returns any',
        'Options.values is any',
        'parse: parameter input is any',
      ].sort(),
    );
  });
});
