import { coded } from '@edgeship/protocol';
import { summarizeValidation, type ValidationReport } from './gates.ts';

/** A gate refused the model: the validation report says which and why (the size gate has none). */
export class GateError extends coded('E_GATE') {
  readonly report: ValidationReport | null;

  constructor(refused: ValidationReport | string) {
    super(typeof refused === 'string' ? refused : summarizeValidation(refused));
    this.report = typeof refused === 'string' ? null : refused;
  }
}
