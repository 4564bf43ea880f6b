/** The stack's outputs (issue 13 item 1): every value the README's steps and the commands need, exported. */
import { STACK_OUTPUTS } from '../../lib/zero-impact-stack';
import { synth } from './synth';

describe('stack outputs', () => {
  it('has every documented output, exported as <stack name>-<key>', () => {
    const outputs = synth().template.toJSON().Outputs as Record<string, { Export?: { Name: string }; Value: unknown }>;

    expect(Object.keys(outputs).sort()).toEqual(Object.keys(STACK_OUTPUTS).sort());
    for (const [key, output] of Object.entries(outputs)) {
      expect(output.Export?.Name).toBe(`ZeroImpactProtect-${key}`);
    }
    expect(outputs['Mode']?.Value).toBe('dry-run');
    expect(JSON.stringify(outputs['DashboardUrl']?.Value)).toContain('#dashboards/dashboard/');
  });

  it('says the mode it was built in', () => {
    const outputs = synth({ mode: 'protect' }).template.toJSON().Outputs as Record<string, { Value: unknown }>;

    expect(outputs['Mode']?.Value).toBe('protect');
  });
});

describe('issue 13 item 10: a wrong Defender layer is refused at deploy (CloudFormation Rules)', () => {
  it('asserts the layer is not the placeholder account and is in the stack region', () => {
    const rules = synth().template.toJSON()['Rules'] as Record<string, { Assertions: Array<Record<string, unknown>> }>;
    const assertions = rules['DefenderLayerRule']?.Assertions ?? [];
    expect(assertions).toEqual([
      {
        Assert: { 'Fn::Not': [{ 'Fn::Equals': ['123456789012', '123456789012'] }] },
        AssertDescription: expect.stringContaining('placeholder account 123456789012'),
      },
      {
        Assert: { 'Fn::Equals': ['eu-west-1', { Ref: 'AWS::Region' }] },
        AssertDescription: expect.stringContaining('a layer of eu-west-1'),
      },
    ]);
  });
});
