import { EdgeshipError, type ErrorCode } from '@edgeship/protocol/errors';

/** The code `promise` rejects with; fails the test if it resolves or rejects with an uncoded error. */
export async function rejectionCode(promise: Promise<unknown>): Promise<ErrorCode> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof EdgeshipError) return error.code;
    throw error;
  }
  throw new Error('expected a rejection');
}
