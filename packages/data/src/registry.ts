/**
 * The one registry per contract, shared by every installed copy of advrec's packages (a
 * plugin that depends on its own copy registers into the same map): kept on `globalThis`
 * under `Symbol.for('advrec.registry.<kind>')`, as tfjs-core keeps its kernel registry.
 */
export function globalRegistry<V>(kind: string): Map<string, V> {
  const key = Symbol.for(`advrec.registry.${kind}`);
  const holder = globalThis as unknown as Record<symbol, Map<string, V> | undefined>;
  let registry = holder[key];
  if (!registry) {
    registry = new Map<string, V>();
    Object.defineProperty(globalThis, key, { value: registry, enumerable: false });
  }
  return registry;
}
