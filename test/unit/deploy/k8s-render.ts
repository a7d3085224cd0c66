/** The manifests as `make k8s` renders them with default settings, for the tests beside this file. */
import { join } from 'node:path';
import type { Manifest } from '../../../tools/k8s/meta';
import { renderAll } from '../../../tools/k8s/render';
import { loadK8sSettings, type K8sSettings } from '../../../tools/k8s/settings';

export const ROOT = join(__dirname, '..', '..', '..');
export const ENV: Record<string, string> = {};

export function rendered(env: Record<string, string> = ENV): {
  s: K8sSettings;
  all: Manifest[];
  of: (kind: string) => Manifest[];
  one: (kind: string, name: string) => Manifest;
} {
  const s = loadK8sSettings(env);
  const all = renderAll(ROOT, s, env).flatMap((f) => f.manifests);
  const of = (kind: string): Manifest[] => all.filter((m) => m.kind === kind);
  const one = (kind: string, name: string): Manifest => {
    const m = all.find((x) => x.kind === kind && x.metadata.name === name);
    if (!m) throw new Error(`no ${kind} ${name} rendered`);
    return m;
  };
  return { s, all, of, one };
}

/** A nested field by path, typed loosely: the manifests are data. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const spec = (m: Manifest): any => m.spec;
