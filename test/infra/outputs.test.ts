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
