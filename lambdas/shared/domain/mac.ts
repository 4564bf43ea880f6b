/**
 * Keyed MACs of OUR variable values (issue 8 item 3): PURE (node:crypto only; the key is passed in).
 *
 * The engine keeps no trace of a customer's values beyond names and the total size. Where it must later recognise a
 * value it wrote itself (its own variables, the wrapper, ORIGINAL_HANDLER), it keeps an HMAC-SHA256 under a key that
 * is derived from the stack's KMS HMAC key (adapters/mac-key.ts) and never stored: without kms:GenerateMac on that
 * key, a MAC cannot be checked against a guess, so a short or common value cannot be recovered by dictionary.
 * The function name and the variable name are part of the message, so equal values on two functions (or under two
 * names) have unrelated MACs.
 */
import { createHmac } from 'node:crypto';
import { defenderVariables, EXEC_WRAPPER_VARIABLE, ORIGINAL_HANDLER_VARIABLE, type Config } from './config';

/** Domain separation of the MAC messages (a new version gets a new prefix, never a reinterpretation). */
export const MAC_PREFIX = 'zero-impact/v1\0';

/** The material a configuration image needs to MAC our values: the derived key and the names that are ours. */
export interface MacContext {
  key: Uint8Array;
  /** Our variable names: config.defender.environment keys (and TW_POLICY with a policySource), AWS_LAMBDA_EXEC_WRAPPER, ORIGINAL_HANDLER. */
  ourNames: ReadonlySet<string>;
}

/** base64url(HMAC-SHA256(key, "zero-impact/v1\0" + functionName + "\0" + variable + "\0" + value)). */
export function valueMac(key: Uint8Array, functionName: string, variable: string, value: string): string {
  return createHmac('sha256', key)
    .update(`${MAC_PREFIX}${functionName}\0${variable}\0${value}`, 'utf8')
    .digest('base64url');
}

/** Every variable name that is ours under this configuration (whatever the method). */
export function ourVariableNames(config: Config): ReadonlySet<string> {
  return new Set([...Object.keys(defenderVariables(config)), EXEC_WRAPPER_VARIABLE, ORIGINAL_HANDLER_VARIABLE]);
}

/** MACs of the variables in `variables` that are ours (and only those), by name. */
export function ourValueMacs(
  mac: MacContext,
  functionName: string,
  variables: Readonly<Record<string, string>>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(variables).sort()) {
    const value = variables[name];
    if (mac.ourNames.has(name) && value !== undefined) out[name] = valueMac(mac.key, functionName, name, value);
  }
  return out;
}
