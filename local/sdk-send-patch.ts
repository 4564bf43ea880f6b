/**
 * Patching an SDK client class's `send` so that every client instance is seen before its first request: the one
 * mechanism behind the simulated account (local/simulated-account.ts) and the DynamoDB fault injector
 * (local/dynamo-faults.ts). `restore()` puts every prototype back exactly as it was (own property or inherited).
 */

type Send = (this: unknown, ...args: unknown[]) => unknown;

export interface SendPatch {
  /** Restores every patched prototype; idempotent. */
  restore(): void;
}

/**
 * Wraps `send` on each prototype: `onClient(client)` runs before the original `send` of every call.
 * @param prototypes client class prototypes (e.g. `LambdaClient.prototype`)
 */
export function patchSend<C>(prototypes: readonly object[], onClient: (client: C) => void): SendPatch {
  const patched: Array<{ proto: object; descriptor: PropertyDescriptor | undefined }> = [];
  for (const proto of prototypes) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, 'send');
    const original = (proto as { send: Send }).send;
    Object.defineProperty(proto, 'send', {
      configurable: true,
      writable: true,
      value: function send(this: C, ...args: unknown[]): unknown {
        onClient(this);
        return original.apply(this, args);
      },
    });
    patched.push({ proto, descriptor });
  }
  return {
    restore: () => {
      for (const { proto, descriptor } of patched.reverse()) {
        if (descriptor === undefined) delete (proto as { send?: unknown }).send;
        else Object.defineProperty(proto, 'send', descriptor);
      }
      patched.length = 0;
    },
  };
}
