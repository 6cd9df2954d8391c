/**
 * The compliance check a regular campaign passes before it is created or
 * started: its template compiles with the campaign's subject and the lint
 * finds no error. Missing unsubscribe or preference links are not errors:
 * Assent appends its compliant footer to every message that lacks them, so
 * no message leaves without both (EML-11, GDPR Art. 21(4)).
 */
import { AppError } from '../shared/errors.js';
import type { Db } from '../storage/index.js';
import { lintTemplate, loadCompiledTemplate, sampleContext, type LintResult } from '../templates/index.js';

export interface PreflightInput {
  templateName: string;
  templateVersion?: number | null;
  subject: string;
  controller: { name: string; email?: string; address?: string; policyUrl?: string };
}

export async function preflightCampaign(deps: { db: Db }, input: PreflightInput): Promise<{ version: number; lint: LintResult }> {
  const { template, compiled } = await loadCompiledTemplate(deps, {
    name: input.templateName,
    version: input.templateVersion,
    subject: input.subject,
  });
  const lint = lintTemplate(
    compiled,
    sampleContext({
      controller: {
        name: input.controller.name,
        email: input.controller.email ?? null,
        address: input.controller.address ?? null,
        policy_url: input.controller.policyUrl ?? null,
      },
    }),
  );
  if (!lint.ok) {
    const errors = lint.problems.filter((p) => p.severity === 'error').map((p) => p.message);
    throw new AppError('validation_failed', `template "${template.name}" v${template.version} fails the compliance lint: ${errors.join('; ')}`);
  }
  return { version: template.version, lint };
}
