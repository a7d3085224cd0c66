/**
 * A small JSON-schema checker: exactly the keywords the Compose Specification schema uses
 * (type, enum, properties, patternProperties, additionalProperties, required, items,
 * uniqueItems, minimum, maximum, oneOf, anyOf, allOf, local $ref). Annotations (id,
 * description, default, deprecated, format) are ignored. It exists so the compose file is
 * validated even where no JSON-schema library is installed; an unknown keyword throws
 * instead of being skipped, so a newer schema cannot silently weaken the check.
 */
export type JsonSchema = boolean | { [keyword: string]: unknown };

export interface SchemaError {
  path: string;
  message: string;
}

const ANNOTATIONS = new Set([
  '$schema',
  'id',
  '$id',
  'title',
  'description',
  'default',
  'deprecated',
  'format',
  'definitions',
  '$comment',
  'examples',
]);
const CHECKED = new Set([
  'type',
  'enum',
  'const',
  'properties',
  'patternProperties',
  'additionalProperties',
  'required',
  'items',
  'uniqueItems',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
  'oneOf',
  'anyOf',
  'allOf',
  '$ref',
]);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    default:
      return typeOf(value) === type;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeOf(value) === 'object';
}

export function createValidator(root: Record<string, unknown>): (data: unknown) => SchemaError[] {
  const resolve = (ref: string): JsonSchema => {
    if (!ref.startsWith('#/')) throw new Error(`only local $ref is supported, got ${ref}`);
    let node: unknown = root;
    for (const part of ref.slice(2).split('/')) {
      node = isObject(node) ? node[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
    }
    if (node === undefined) throw new Error(`unresolvable $ref ${ref}`);
    return node as JsonSchema;
  };

  const check = (schema: JsonSchema, value: unknown, path: string): SchemaError[] => {
    if (schema === true) return [];
    if (schema === false) return [{ path, message: 'no value is allowed here' }];
    const errors: SchemaError[] = [];
    for (const keyword of Object.keys(schema)) {
      if (!CHECKED.has(keyword) && !ANNOTATIONS.has(keyword)) throw new Error(`schema keyword "${keyword}" at ${path} is not supported`);
    }
    if (typeof schema.$ref === 'string') errors.push(...check(resolve(schema.$ref), value, path));
    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
      if (!types.some((t) => hasType(value, t))) return [...errors, { path, message: `must be ${types.join(' or ')}, is ${typeOf(value)}` }];
    }
    if (Array.isArray(schema.enum) && !schema.enum.some((e) => e === value)) {
      errors.push({ path, message: `must be one of ${JSON.stringify(schema.enum)}, is ${JSON.stringify(value)}` });
    }
    if ('const' in schema && schema.const !== value) errors.push({ path, message: `must be ${JSON.stringify(schema.const)}` });
    if (typeof value === 'number') {
      if (typeof schema.minimum === 'number' && value < schema.minimum) errors.push({ path, message: `must be >= ${schema.minimum}` });
      if (typeof schema.maximum === 'number' && value > schema.maximum) errors.push({ path, message: `must be <= ${schema.maximum}` });
    }
    if (isObject(value)) {
      const props = isObject(schema.properties) ? schema.properties : {};
      const patterns = isObject(schema.patternProperties) ? schema.patternProperties : {};
      for (const name of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
        if (!(name in value)) errors.push({ path, message: `must have "${name}"` });
      }
      for (const [key, child] of Object.entries(value)) {
        const at = `${path}/${key}`;
        let matched = false;
        if (key in props) {
          matched = true;
          errors.push(...check(props[key] as JsonSchema, child, at));
        }
        for (const [pattern, sub] of Object.entries(patterns)) {
          if (new RegExp(pattern, 'u').test(key)) {
            matched = true;
            errors.push(...check(sub as JsonSchema, child, at));
          }
        }
        if (!matched && schema.additionalProperties !== undefined) {
          errors.push(
            ...(schema.additionalProperties === false
              ? [{ path: at, message: 'is not allowed here (unknown key)' }]
              : check(schema.additionalProperties as JsonSchema, child, at)),
          );
        }
      }
    }
    if (Array.isArray(value)) {
      if (schema.items !== undefined) value.forEach((item, i) => errors.push(...check(schema.items as JsonSchema, item, `${path}/${i}`)));
      if (schema.uniqueItems === true && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) {
        errors.push({ path, message: 'items must be unique' });
      }
      if (typeof schema.minItems === 'number' && value.length < schema.minItems) errors.push({ path, message: `needs >= ${schema.minItems} items` });
      if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) errors.push({ path, message: `allows <= ${schema.maxItems} items` });
    }
    if (Array.isArray(schema.allOf)) for (const sub of schema.allOf as JsonSchema[]) errors.push(...check(sub, value, path));
    if (Array.isArray(schema.anyOf)) {
      const results = (schema.anyOf as JsonSchema[]).map((sub) => check(sub, value, path));
      if (!results.some((r) => r.length === 0))
        errors.push({
          path,
          message: `matches none of anyOf: ${results
            .flat()
            .map((e) => e.message)
            .join('; ')}`,
        });
    }
    if (Array.isArray(schema.oneOf)) {
      const results = (schema.oneOf as JsonSchema[]).map((sub) => check(sub, value, path));
      const passing = results.filter((r) => r.length === 0).length;
      if (passing !== 1) {
        const detail =
          passing === 0
            ? results
                .flat()
                .map((e) => `${e.path}: ${e.message}`)
                .join('; ')
            : `${passing} alternatives match`;
        errors.push({ path, message: `must match exactly one of oneOf (${detail})` });
      }
    }
    return errors;
  };

  return (data: unknown) => check(root, data, '');
}
