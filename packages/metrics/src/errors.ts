import { AdvrecError } from '@advrec/data';

const EVALUATION_ERROR = Symbol.for('advrec.error.EvaluationError');

/**
 * Evaluation cannot produce a correct result: a model returned a non-finite score, the
 * split to evaluate is empty, shapes do not match. Names the user and item at fault.
 */
export class EvaluationError extends AdvrecError {
  readonly [EVALUATION_ERROR] = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EvaluationError';
  }

  static override isInstance(value: unknown): value is EvaluationError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[EVALUATION_ERROR] === true
    );
  }
}
