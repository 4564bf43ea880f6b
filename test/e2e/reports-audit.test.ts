/**
 * `audit` against the simulated account (the example estate): the same decisions as the deployed job's dry run
 * (local-run's, test/e2e/dry-run.test.ts), no write call of any kind (asserted on the call counters), and the facts
 * it could not read when the caller's permissions hide them.
 */
import { run as auditRun } from '../../bin/commands/audit';
import type { ReportModel } from '../../bin/reports/report-model';
import type { Unreadable } from '../../bin/reports/live-audit';
import { SimulatedAccount } from '../../local/simulated-account';
import { CANARY, CONFIG_FILE, exampleEstate, policyValue } from './e2e-helpers';
import { capture } from './reports-fixture';

/** Operations that read: everything else (Put, Update, Publish, Create, Delete, Tag...) is a write. */
const READ = /^[a-z0-9-]+:(List|Get|Describe|BatchGet|Query|Scan)[A-Za-z]*$/;

describe('audit', () => {
  let account: SimulatedAccount;
  afterEach(() => account?.uninstall());

  it('assesses the live account as the job would, making no write call', async () => {
    const estate = exampleEstate();
    account = new SimulatedAccount({ estate }).install();
    const { code, out, err } = await capture(() => auditRun(['--config', CONFIG_FILE, '--format', 'json', '--quiet']));
    expect({ code, err }).toEqual({ code: 0, err: '' });
    const model = JSON.parse(out) as ReportModel & { unreadable: Unreadable[] };
    // The dry run of the same estate (local-run): 15 would be protected, 31 skipped, 2 already protected.
    expect(model.outcomes).toEqual({ ALREADY_PROTECTED: 2, WOULD_PROTECT: 15, SKIPPED: 31 });
    expect(model.skips.find((s) => s.reason === 'MEMORY_LOW')?.functions).toEqual([
      'config-loader',
      'many-problems-legacy',
      'webhook-receiver',
    ]);
    // metrics-unreadable's metrics are null in the estate (GetMetricData InternalError): FACTS_MISSING, as in the job.
    expect(model.functions.find((f) => f.functionName === 'metrics-unreadable')?.reasons).toEqual(['FACTS_MISSING']);
    const calls = Object.keys(account.calls());
    expect(calls.filter((op) => !READ.test(op))).toEqual([]);
    expect(calls).toEqual(expect.arrayContaining(['lambda:ListFunctions', 'lambda:GetFunction', 'ssm:GetParameter']));
    expect(out).not.toContain(CANARY);
    expect(out).not.toContain(policyValue(estate));
  });

  it("says which facts the caller's permissions hid, and exits 1 on --fail-on", async () => {
    account = new SimulatedAccount({ estate: exampleEstate() }).install();
    account.injectFault({ operation: 'lambda:GetFunction', error: 'AccessDeniedException', httpStatusCode: 403 });
    account.injectFault({ operation: 'tag:GetResources', error: 'AccessDeniedException', httpStatusCode: 400 });
    const { code, out, err } = await capture(() =>
      auditRun(['--config', CONFIG_FILE, '--function', 'orders-api', '--fail-on', 'SKIPPED', '--quiet']),
    );
    expect(code).toBe(1);
    expect(err).toBe('zero-impact audit: --fail-on matched: SKIPPED 1\n');
    expect(out).toContain("Facts that could not be read with the caller's permissions");
    expect(out).toContain('  GetFunction (AccessDeniedException): orders-api');
    expect(out).toContain('  tag:GetResources (AccessDeniedException): orders-api');
    expect(out).toContain('FACTS_MISSING');
  });

  it('turns a refused inventory into one line that says what to do (exit 3)', async () => {
    account = new SimulatedAccount({ estate: exampleEstate() }).install();
    account.injectFault({ operation: 'lambda:ListFunctions', error: 'AccessDeniedException', httpStatusCode: 403 });
    const { code, out, err } = await capture(() => auditRun(['--config', CONFIG_FILE, '--quiet']));
    expect({ code, out }).toEqual({ code: 3, out: '' });
    expect(err.split('\n')).toHaveLength(2);
    expect(err).toMatch(/^zero-impact audit: access denied for reading the account \(AccessDeniedException\)/);
  });
});
