/**
 * What every SDK v3 paginator (`paginateListFunctions`, `paginateGetResources`, lib-dynamodb `paginateQuery`, ...)
 * of this project is given, so that the paginators keep two properties of the loops they replaced:
 *
 * - **Pacing per page.** `pacedClient(client, limiter)` is the client the paginator sends through: each page's
 *   request takes one token from the run's bucket first. The paginator stops on an empty next token without sending
 *   (`createPaginator` in @smithy/core: `hasNext = !!token`), so a page that is never requested takes no token and
 *   `limiter.taken` still counts requests. It is the real client's own object underneath (`Object.create`), so the
 *   paginator's `instanceof` check passes and every `send` patch or mock of the client class still sees the call.
 * - **One input per page.** The paginator reuses one input object for every page, writing the next token into it;
 *   each command would then show the last page's token. `ownInput` gives each page's command a copy, so what was
 *   sent (mocks, the simulated account's records) is what each page asked for.
 */
import type { TokenBucket } from './rate-limiter';

type Send = (...args: unknown[]) => Promise<unknown>;

/** `client`, with a token taken from `limiter` before each request. */
export function pacedClient<C extends object>(client: C, limiter: TokenBucket): C {
  const send: Send = (...args) => limiter.run(() => (client as unknown as { send: Send }).send(...args));
  return Object.create(client, { send: { value: send } }) as C;
}

/** The paginators' `withCommand`: each page's command keeps its own copy of the input. */
export function ownInput<T extends { input: object }>(command: T): T {
  command.input = { ...command.input };
  return command;
}
