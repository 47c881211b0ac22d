import { describe, expect, it } from 'vitest';
import {
  CodedError,
  deserializeError,
  EdgeshipError,
  ERROR_CODES,
  ERROR_TABLE,
  ExpiredError,
  exitCodeOf,
  HttpStatusError,
  httpStatusOf,
  LifetimeError,
  MalformedError,
  SignatureError,
  serializeError,
  UnknownKeyError,
  VerificationError,
} from './errors.ts';

describe('the error code table', () => {
  it('gives every code an HTTP status and a CLI exit code', () => {
    for (const code of ERROR_CODES) {
      expect(ERROR_TABLE[code].status, code).toBeGreaterThanOrEqual(400);
      expect([1, 2, 3, 4], code).toContain(exitCodeOf(code));
    }
  });

  it('lets each class fix its code, so class and code agree', () => {
    expect(new UnknownKeyError('k').code).toBe('E_UNKNOWN_KEY');
    expect(new UnknownKeyError('k')).toBeInstanceOf(SignatureError);
    expect(new LifetimeError('l')).toBeInstanceOf(ExpiredError);
    expect(new MalformedError('m')).toBeInstanceOf(VerificationError);
    expect(new MalformedError('m').name).toBe('MalformedError');
  });

  it("renders a class's own status before its code's", () => {
    class Unprocessable extends CodedError {
      static override readonly code = 'E_VALIDATION';
      static override readonly status = 422;
    }
    expect(httpStatusOf(new Unprocessable('x'))).toBe(422);
    expect(httpStatusOf(new EdgeshipError('E_VALIDATION', 'x'))).toBe(400);
  });
});

describe('serializeError / deserializeError', () => {
  it('brings back the class, code, message, stack and fields', () => {
    const original = new HttpStatusError('manifest request answered 503', 503);
    const data = structuredClone(serializeError(original));
    const revived = deserializeError(data);
    expect(revived).toBeInstanceOf(HttpStatusError);
    expect(revived).toMatchObject({ code: 'E_HTTP', status: 503, message: original.message });
    expect(revived.stack).toBe(original.stack);
  });

  it('revives a registered class by name, and by code when the name is unknown', () => {
    class Custom extends CodedError {
      static override readonly code = 'E_NO_BACKEND';
      constructor(readonly reasons: string[]) {
        super(`no backend: ${reasons.join('; ')}`);
      }
    }
    const data = serializeError(new Custom(['wasm: missing']));
    const byName = deserializeError(data, [Custom]);
    expect(byName).toBeInstanceOf(Custom);
    expect((byName as Custom).reasons).toEqual(['wasm: missing']);
    // A minifier renamed the class on one side: the code still picks it.
    const byCode = deserializeError({ ...data, name: 't' }, [Custom]);
    expect(byCode).toBeInstanceOf(Custom);
  });

  it('keeps an error with no code a plain Error, and a thrown non-Error its text', () => {
    const plain = deserializeError(serializeError(new TypeError('bad')));
    expect(plain).not.toBeInstanceOf(EdgeshipError);
    expect(plain).toMatchObject({ name: 'TypeError', message: 'bad' });
    expect(deserializeError(serializeError('just a string')).message).toBe('just a string');
  });

  it('leaves behind a field postMessage cannot clone, instead of failing', () => {
    class WithFunction extends CodedError {
      static override readonly code = 'E_INTERNAL';
      readonly callback = () => 1;
      readonly phase = 'read';
    }
    const data = serializeError(new WithFunction('x'));
    expect(data.details).toEqual({ phase: 'read' });
    expect(() => structuredClone(data)).not.toThrow();
  });
});
