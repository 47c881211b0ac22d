// Runs the workspaces from their TypeScript sources: tsx compiles them, and every import resolves
// through the "edgeship-source" export condition, as `node --conditions=edgeship-source --import
// tsx` would. The bins import this in a checkout; installed from npm they run dist/ instead.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

registerTsx();
const addSourceCondition = `export function resolve(specifier, context, next) {
  const { conditions } = context;
  if (conditions.includes('edgeship-source')) return next(specifier, context);
  return next(specifier, { ...context, conditions: [...conditions, 'edgeship-source'] });
}`;
register(`data:text/javascript,${encodeURIComponent(addSourceCondition)}`);
