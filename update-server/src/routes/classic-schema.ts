import { z } from '@hono/zod-openapi';

type Core = z.core.$ZodType;

/** Keys of a zod 4 definition that hold one schema, or a list or map of them. */
const SCHEMA_KEYS = [
  'element',
  'innerType',
  'keyType',
  'valueType',
  'in',
  'out',
  'catchall',
  'left',
  'right',
  'rest',
];
const SCHEMA_LIST_KEYS = ['options', 'items'];

const converted = new WeakMap<Core, z.ZodType>();

/**
 * The same schema as classic zod, rebuilt from its definition: `@hono/zod-openapi` validates
 * and documents with classic schemas only (zod-to-openapi calls `.meta()` and `.openapi()`, which
 * neither `zod/mini` schemas nor classic ones created before it was loaded have: zod copies
 * prototype members onto each instance when it is built). Zod 4's classic and mini schemas share
 * their definitions and checks (`zod/v4/core`), so the copy parses exactly as the original does,
 * and protocol keeps the one definition. A `name` makes it an OpenAPI component.
 */
export function classic<T extends Core>(schema: T, name?: string): z.ZodType<z.output<T>, z.input<T>> {
  let result = converted.get(schema);
  if (!result) {
    const constr = schema._zod.constr as { name: string };
    const className = constr.name.replace(/^ZodMini/, 'Zod');
    const Classic = ((z as Record<string, unknown>)[className] ??
      (z.iso as Record<string, unknown>)[className]) as (new (def: unknown) => z.ZodType) | undefined;
    if (!Classic) throw new Error(`no classic zod schema for ${constr.name}`);
    const def: Record<string, unknown> = { ...schema._zod.def };
    for (const key of SCHEMA_KEYS) if (isSchema(def[key])) def[key] = classic(def[key]);
    for (const key of SCHEMA_LIST_KEYS) {
      if (Array.isArray(def[key])) def[key] = (def[key] as Core[]).map((option) => classic(option));
    }
    if (def.shape) {
      const shape = def.shape as Record<string, Core>;
      def.shape = Object.fromEntries(Object.entries(shape).map(([key, field]) => [key, classic(field)]));
    }
    if (typeof def.getter === 'function') {
      const getter = def.getter as () => Core;
      def.getter = () => classic(getter());
    }
    result = new Classic(def);
    converted.set(schema, result);
  }
  if (name) {
    result = result.openapi(name);
    // Later conversions of schemas that contain this one refer to the component.
    converted.set(schema, result);
  }
  return result as z.ZodType<z.output<T>, z.input<T>>;
}

function isSchema(value: unknown): value is Core {
  return typeof value === 'object' && value !== null && '_zod' in value;
}
