import * as z from 'zod/mini';
import { MalformedError } from './errors.ts';

/** Parses JSON text against a schema; any failure is E_MALFORMED naming the first bad path. */
export function parseJson<T extends z.core.$ZodType>(schema: T, text: string, what: string): z.infer<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new MalformedError(`${what} is not JSON`, { cause });
  }
  return parseValue(schema, value, what);
}

export function parseValue<T extends z.core.$ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  // The function form: classic and mini schemas alike (the CLI passes classic ones of its own).
  const result = z.safeParse(schema, value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : '(root)';
    throw new MalformedError(`${what} is invalid at ${where}: ${issue?.message ?? 'unknown'}`, {
      cause: result.error,
    });
  }
  return result.data;
}
