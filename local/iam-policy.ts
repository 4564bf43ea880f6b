/**
 * IAM for the simulated account: the identity policies of the stack's roles, read from the synthesized template, and
 * the evaluation the simulator applies to every call a handler makes (local/simulated-account.ts).
 *
 * Evaluation follows the IAM policy evaluation logic (IAM User Guide, "Policy evaluation logic",
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html) for one identity policy
 * set, no resource policies, no SCPs: a request is allowed when some Allow statement matches its action, resource and
 * conditions, and no Deny statement matches; otherwise it is implicitly denied. Actions match case-insensitively,
 * resources case-sensitively, both with the `*` and `?` wildcards. Conditions: the `String*`/`Arn*` operators with
 * the `ForAnyValue:`/`ForAllValues:` set prefixes and `IfExists`, on the context keys a call provides (today
 * `lambda:Layer` of UpdateFunctionConfiguration). A key the request does not carry makes a plain or `ForAnyValue:`
 * condition false and a `ForAllValues:` condition true, as IAM does ("Condition operators", "Single-valued vs.
 * multivalued context keys"). So `kms:ViaService` is never present on a direct call: a statement that requires it
 * does not allow the handler's own KMS calls, as in AWS.
 */
import { resolveIntrinsics, type CfnTemplate, type LocalNaming } from './asl-local';

export type ConditionBlock = Record<string, Record<string, string | string[]>>;

export interface PolicyStatement {
  effect: 'Allow' | 'Deny';
  actions: string[];
  /** Resource ARN patterns, resolved to local names. */
  resources: string[];
  conditions?: ConditionBlock;
}

/** What one caller (a handler's role) may do. */
export interface CallerPolicy {
  /** The role name, for AWS's AccessDenied message. */
  role: string;
  statements: PolicyStatement[];
}

/** The context keys of one request (multivalued keys as arrays). */
export type RequestContext = Record<string, string[]>;

function wildcard(pattern: string, flags = ''): RegExp {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, flags);
}

export function actionMatches(pattern: string, action: string): boolean {
  return wildcard(pattern, 'i').test(action);
}

export function resourceMatches(pattern: string, resource: string): boolean {
  return pattern === '*' || wildcard(pattern).test(resource);
}

function compare(operator: string, expected: string, actual: string): boolean {
  switch (operator) {
    case 'StringEquals':
    case 'ArnEquals':
      return expected === actual;
    case 'StringNotEquals':
    case 'ArnNotEquals':
      return expected !== actual;
    case 'StringEqualsIgnoreCase':
      return expected.toLowerCase() === actual.toLowerCase();
    case 'StringLike':
    case 'ArnLike':
      return wildcard(expected).test(actual);
    case 'StringNotLike':
    case 'ArnNotLike':
      return !wildcard(expected).test(actual);
    default:
      return false;
  }
}

function conditionHolds(rawOperator: string, key: string, expected: string[], context: RequestContext): boolean {
  let operator = rawOperator;
  let set: 'any' | 'all' | undefined;
  if (operator.startsWith('ForAnyValue:')) [set, operator] = ['any', operator.slice('ForAnyValue:'.length)];
  else if (operator.startsWith('ForAllValues:')) [set, operator] = ['all', operator.slice('ForAllValues:'.length)];
  const ifExists = operator.endsWith('IfExists');
  if (ifExists) operator = operator.slice(0, -'IfExists'.length);
  const values = Object.entries(context).find(([k]) => k.toLowerCase() === key.toLowerCase())?.[1];
  if (values === undefined || values.length === 0) return set === 'all' || ifExists;
  const one = (value: string): boolean => expected.some((e) => compare(operator, e, value));
  if (set === 'all') return values.every(one);
  return values.some(one);
}

function statementApplies(
  statement: PolicyStatement,
  action: string,
  resource: string,
  context: RequestContext,
): boolean {
  if (!statement.actions.some((a) => actionMatches(a, action))) return false;
  if (!statement.resources.some((r) => resourceMatches(r, resource))) return false;
  for (const [operator, keys] of Object.entries(statement.conditions ?? {})) {
    for (const [key, value] of Object.entries(keys)) {
      if (!conditionHolds(operator, key, Array.isArray(value) ? value : [value], context)) return false;
    }
  }
  return true;
}

/** IAM's decision for one action on one resource: an explicit Deny wins, else some Allow, else implicit deny. */
export function isAllowed(
  policy: CallerPolicy,
  action: string,
  resource: string,
  context: RequestContext = {},
): boolean {
  const applying = policy.statements.filter((s) => statementApplies(s, action, resource, context));
  return applying.some((s) => s.effect === 'Allow') && !applying.some((s) => s.effect === 'Deny');
}

function strings(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

/**
 * Each Lambda function's identity policy statements from the template (the AWS::IAM::Policy resources attached to
 * its role), resources resolved to local names, by function logical id. A resource the local resolver cannot resolve
 * becomes `*` (the action still has to be granted).
 */
export function functionPolicies(template: CfnTemplate, naming: LocalNaming): Map<string, CallerPolicy> {
  const resources = template.Resources ?? {};
  const byRole = new Map<string, PolicyStatement[]>();
  for (const resource of Object.values(resources)) {
    if (resource.Type !== 'AWS::IAM::Policy') continue;
    const properties = resource.Properties ?? {};
    const document = properties['PolicyDocument'] as { Statement?: unknown[] } | undefined;
    const statements = (document?.Statement ?? []).map((raw): PolicyStatement => {
      const s = raw as Record<string, unknown>;
      const resolved = strings(s['Resource']).length === 0 ? [] : safeResolve(s['Resource'], template, naming);
      return {
        effect: s['Effect'] === 'Deny' ? 'Deny' : 'Allow',
        actions: strings(s['Action']),
        resources: resolved,
        ...(s['Condition'] !== undefined
          ? { conditions: safeResolve(s['Condition'], template, naming, true) as unknown as ConditionBlock }
          : {}),
      };
    });
    for (const role of (properties['Roles'] as unknown[] | undefined) ?? []) {
      const roleId = (role as { Ref?: string }).Ref;
      if (roleId === undefined) continue;
      byRole.set(roleId, [...(byRole.get(roleId) ?? []), ...statements]);
    }
  }
  const policies = new Map<string, CallerPolicy>();
  for (const [logicalId, resource] of Object.entries(resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const role = resource.Properties?.['Role'] as { 'Fn::GetAtt'?: [string, string] } | undefined;
    const roleId = role?.['Fn::GetAtt']?.[0];
    policies.set(logicalId, {
      role: roleId === undefined ? `${logicalId}-role` : `${naming.stackName}-${roleId}`,
      statements: roleId === undefined ? [] : (byRole.get(roleId) ?? []),
    });
  }
  return policies;
}

function safeResolve(value: unknown, template: CfnTemplate, naming: LocalNaming, keep = false): string[] {
  try {
    const resolved = resolveIntrinsics(value, template, naming);
    return keep ? (resolved as string[]) : strings(resolved);
  } catch {
    return keep ? (value as string[]) : ['*'];
  }
}
