import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type avro from 'avsc';

/** The project root: the nearest folder up with a package.json (works from src and dist/). */
export function projectRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

/** schemas/*.avsc are the source of truth; the container image carries the folder. */
export function loadSchema(file: string, dir: string = join(projectRoot(), 'schemas')): avro.Schema {
  return JSON.parse(readFileSync(join(dir, file), 'utf8')) as avro.Schema;
}

/** Confluent TopicNameStrategy: the value schema of topic T lives under subject "T-value". */
export const valueSubject = (topic: string): string => `${topic}-value`;
