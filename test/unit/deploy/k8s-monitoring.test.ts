import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { JOBS_NOT_DEPLOYED } from '../../../tools/k8s/alerts';
import type { Manifest } from '../../../tools/k8s/meta';
import { rendered, ROOT, spec } from './k8s-render';

/** Every job label a rule matches on: job="x", and each alternative of job=~"a|b". */
function jobsIn(exprs: string[]): Set<string> {
  const jobs = new Set<string>();
  for (const e of exprs) {
    for (const m of e.matchAll(/job="([^"]+)"/g)) jobs.add(m[1] as string);
    for (const m of e.matchAll(/job=~"([^"]+)"/g)) for (const j of (m[1] as string).split('|')) jobs.add(j);
  }
  return jobs;
}
const exprsOf = (groups: { rules: { expr: string }[] }[]): string[] => groups.flatMap((g) => g.rules.map((r) => r.expr));
const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('PrometheusRule and monitors', () => {
  const { of, one, s } = rendered();

  /** The job label prometheus-operator gives each target: the jobLabel's value on the Service or pod, else the object's name. */
  function producedJobs(): Set<string> {
    const jobs = new Set<string>();
    for (const sm of of('ServiceMonitor')) {
      const { jobLabel, selector } = spec(sm);
      for (const svc of of('Service').filter((x) => matches(selector.matchLabels, x.metadata.labels ?? {})))
        jobs.add((jobLabel && svc.metadata.labels?.[jobLabel]) || svc.metadata.name);
    }
    // the pods Strimzi makes: its own labels plus the template's
    const connect = one('KafkaConnect', s.connectName);
    const pool = of('KafkaNodePool')[0] as Manifest;
    const pods = [
      { ...spec(connect).template.pod.metadata.labels, 'strimzi.io/cluster': s.connectName, 'strimzi.io/kind': 'KafkaConnect' },
      { ...spec(pool).template.pod.metadata.labels, 'strimzi.io/cluster': s.kafkaCluster, 'strimzi.io/kind': 'Kafka' },
    ] as Record<string, string>[];
    for (const pm of of('PodMonitor')) {
      const { jobLabel, selector } = spec(pm);
      const selected = pods.filter((p) => matches(selector.matchLabels, p));
      expect({ podMonitor: pm.metadata.name, selects: selected.length }).toEqual({ podMonitor: pm.metadata.name, selects: 1 });
      for (const p of selected) jobs.add(p[jobLabel] ?? `${s.namespace}/${pm.metadata.name}`);
    }
    return jobs;
  }

  it('every job a rendered rule names is one a ServiceMonitor or PodMonitor produces', () => {
    const rule = one('PrometheusRule', 'welcome-alerts');
    const named = jobsIn(exprsOf(spec(rule).groups));
    expect([...named].sort()).toEqual(['augmenter', 'connect', 'delivery-status', 'emailer', 'kafka']);
    const produced = producedJobs();
    for (const job of named) expect({ job, produced: produced.has(job) }).toEqual({ job, produced: true });
  });

  it('carries every rule of monitoring/alerts.yml but those of components not deployed here, expressions otherwise unchanged', () => {
    const source = parse(readFileSync(join(ROOT, 'monitoring/alerts.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const rendered = new Map(
      (spec(one('PrometheusRule', 'welcome-alerts')).groups as typeof source.groups).flatMap((g) => g.rules.map((r) => [r.alert, r.expr] as const)),
    );
    const left = source.groups.flatMap((g) => g.rules).filter((r) => !rendered.has(r.alert));
    expect(left.map((r) => r.alert).sort()).toEqual(['ConnectWatchdogGaveUp', 'ConnectWatchdogRestarting']);
    for (const r of source.groups.flatMap((g) => g.rules).filter((x) => rendered.has(x.alert))) {
      const stripped = r.expr.replace(new RegExp(`\\|(${Object.keys(JOBS_NOT_DEPLOYED).join('|')})(?=[|"])`, 'g'), '');
      expect({ alert: r.alert, expr: rendered.get(r.alert) }).toEqual({ alert: r.alert, expr: stripped });
    }
    expect(jobsIn(exprsOf(source.groups))).toEqual(new Set([...producedJobs(), ...Object.keys(JOBS_NOT_DEPLOYED)]));
  });

  it('scrapes the consumers on their health server port and Strimzi pods on their exporter port', () => {
    for (const sm of of('ServiceMonitor')) expect(spec(sm).endpoints).toEqual([expect.objectContaining({ port: 'http', path: '/metrics' })]);
    for (const pm of of('PodMonitor')) expect(spec(pm).podMetricsEndpoints).toEqual([expect.objectContaining({ port: 'tcp-prometheus' })]);
  });
});
