import { EdgeshipError, errorFromData } from '@edgeship/protocol/errors';
import { transferHandlers } from 'comlink';

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

interface SerializedError {
  message: string;
  name: string;
  stack?: string;
  code?: string;
}

/**
 * Comlink's built-in "throw" handler keeps only message, name and stack. Ours also keeps the
 * stable `code` and rebuilds the typed error class on the main thread, so callers can branch on
 * `error.code` exactly as they would in the worker. Installed on both sides of the boundary.
 */
export function installErrorTransfer(): void {
  transferHandlers.set('throw', {
    canHandle: isThrownValue,
    serialize({ value }: ThrownValue) {
      const serialized: { isError: boolean; value: unknown } =
        value instanceof Error
          ? {
              isError: true,
              value: {
                message: value.message,
                name: value.name,
                stack: value.stack,
                ...(value instanceof EdgeshipError ? { code: value.code } : {}),
              } satisfies SerializedError,
            }
          : { isError: false, value };
      return [serialized, []];
    },
    deserialize(serialized: { isError: boolean; value: unknown }) {
      if (!serialized.isError) throw serialized.value;
      const data = serialized.value as SerializedError;
      if (data.code) {
        const error = errorFromData({ code: data.code, message: data.message, name: data.name });
        if (data.stack) error.stack = data.stack;
        throw error;
      }
      throw Object.assign(new Error(data.message), { name: data.name, stack: data.stack });
    },
  } as Parameters<typeof transferHandlers.set>[1]);
}
