// Validates Kubernetes objects against the schemas of the npm packages kubernetes-models,
// @kubernetes-models/keda and @kubernetes-models/prometheus-operator, and rejects fields
// that the schema does not define (the API server would drop them silently, or reject them
// with strict field validation).
//
// Input (stdin): a JSON array of objects. Output (stdout): a JSON array with one entry per
// object: {kind, name, known, errors: [...], unknown: [...]}. Exit code 0 either way; the
// caller judges the entries.
//
// Unknown fields: the packages' validators are compiled JSON schemas that accept extra
// properties. Each object is therefore validated through a Proxy that records every
// property the validator reads and every object whose keys it enumerates (maps such as
// labels or data). A field the validator never read, inside an object it never enumerated,
// is not in the schema.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

// Where a group's model classes live.
function classModule(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "keda.sh") return `@kubernetes-models/keda/${group}/${version}/${kind}`;
  if (group === "monitoring.coreos.com") return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

// The compiled schema validator a model class uses (imported by the class module itself).
async function schemaValidator(apiVersion, kind) {
  let classPath;
  try {
    // The packages export ESM only: resolve as an import would (sync since Node 20).
    classPath = fileURLToPath(import.meta.resolve(classModule(apiVersion, kind)));
  } catch {
    return null;
  }
  const source = readFileSync(classPath, "utf8");
  const match = source.match(/import\{validate\}from"([^"]+_schemas\/[^"]+)"/);
  if (!match) throw new Error(`no schema import in ${classPath}`);
  const module = await import(pathToFileURL(join(dirname(classPath), match[1])).href);
  return module.validate;
}

function track(value, path, seen, enumerated) {
  if (value === null || typeof value !== "object") return value;
  const children = new Map();
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key === "string" && Object.prototype.hasOwnProperty.call(target, key)) {
        seen.add(`${path}/${key}`);
        if (!children.has(key)) children.set(key, track(target[key], `${path}/${key}`, seen, enumerated));
        return children.get(key);
      }
      return Reflect.get(target, key, receiver);
    },
    ownKeys(target) {
      enumerated.add(path);
      return Reflect.ownKeys(target);
    },
  });
}

function unknownFields(object, seen, enumerated) {
  const unknown = [];
  (function walk(value, path) {
    if (value === null || typeof value !== "object") return;
    for (const key of Object.keys(value)) {
      const child = `${path}/${key}`;
      if (!seen.has(child) && !enumerated.has(path)) unknown.push(child);
      walk(value[key], child);
    }
  })(object, "");
  return unknown;
}

const objects = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const object of objects) {
  const entry = { kind: object.kind, name: object.metadata?.name, known: false, errors: [], unknown: [] };
  const validate = await schemaValidator(object.apiVersion, object.kind);
  if (validate) {
    entry.known = true;
    const seen = new Set();
    const enumerated = new Set();
    if (!validate(track(object, "", seen, enumerated))) {
      entry.errors = validate.errors.map((e) => `${e.instancePath || "/"} ${e.message ?? e.keyword}`);
    }
    entry.unknown = unknownFields(object, seen, enumerated);
  }
  results.push(entry);
}
process.stdout.write(JSON.stringify(results) + "\n");
