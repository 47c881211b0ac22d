import { deserializeError, type ErrorData, serializeError } from '@edgeship/protocol/errors';
import { transferHandlers } from 'comlink';
import { BackendUnavailableError, NoBackendError } from '../engines/engine.ts';
import { ActivationError } from './activation-error.ts';

/** The runtime's own classes, beside protocol's: revived as themselves, with their fields. */
const RUNTIME_ERRORS = [NoBackendError, BackendUnavailableError, ActivationError];

/** An error as data for postMessage: message, name, stack, code and the class's fields. */
export const errorToData = (error: unknown): ErrorData => serializeError(error);

/** The typed error back, on the other side of the boundary. */
export const errorFromData = (data: ErrorData): Error => deserializeError(data, RUNTIME_ERRORS);

/** What comlink wraps a thrown value in: `{ value, [Symbol('Comlink.thrown')]: 0 }`. */
interface ThrownValue {
  value: unknown;
}

function isThrownValue(value: unknown): value is ThrownValue {
  return (
    typeof value === 'object' &&
    value !== null &&
    'value' in value &&
    Object.getOwnPropertySymbols(value).some((s) => s.description === 'Comlink.thrown')
  );
}

/**
 * Comlink's built-in "throw" handler keeps only message, name and stack. Ours goes through the
 * same errorToData/errorFromData as the inference channel, so callers branch on `error.code` and
 * read a NoBackendError's `reasons` exactly as they would in the worker. Installed on both sides.
 */
export function installErrorTransfer(): void {
  transferHandlers.set('throw', {
    canHandle: isThrownValue,
    serialize({ value }: ThrownValue) {
      const serialized =
        value instanceof Error ? { isError: true, value: errorToData(value) } : { isError: false, value };
      return [serialized, []];
    },
    deserialize(serialized: { isError: boolean; value: unknown }) {
      if (!serialized.isError) throw serialized.value;
      throw errorFromData(serialized.value as ErrorData);
    },
  } as Parameters<typeof transferHandlers.set>[1]);
}
