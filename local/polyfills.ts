/**
 * aws-local-stepfunctions 3 declares Node >= 22 and calls `Promise.withResolvers`, which Node 20 lacks. The project
 * runs on Node 20 (the machines here) and 22 (the Lambda runtime), so the local run installs this small polyfill
 * before the interpreter runs: local/asl-local.ts imports this module ahead of the interpreter, so every entry point
 * (the command line, the tests) gets it.
 */

interface Resolvers<T> {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
}

type PromiseWithResolvers = PromiseConstructor & { withResolvers?: <T>() => Resolvers<T> };

export function installPromiseWithResolvers(): void {
  const ctor = Promise as PromiseWithResolvers;
  if (typeof ctor.withResolvers === 'function') return;
  ctor.withResolvers = function withResolvers<T>(): Resolvers<T> {
    let resolve: Resolvers<T>['resolve'] = () => undefined;
    let reject: Resolvers<T>['reject'] = () => undefined;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

installPromiseWithResolvers();
