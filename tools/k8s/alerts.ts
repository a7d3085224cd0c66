/**
 * monitoring/alerts.yml as a PrometheusRule for the prometheus-operator, with the rules of
 * components that do not run on Kubernetes left out: the Connect watchdog (Strimzi's
 * autoRestart restarts failed connectors and tasks there; connectors.ts says why). Every other
 * rule is copied as is: its job labels are the ones the ServiceMonitors and PodMonitors here
 * produce (a test holds the two together). rulesForPromtool() gives the same groups as a plain
 * rules file, and the promtool tests of monitoring/tests/ without the left-out alerts, so
 * `promtool test rules` runs on exactly what the PrometheusRule carries.
 */
import { parse, stringify } from 'yaml';
import { labels, type Manifest } from './meta';
import type { K8sSettings } from './settings';

/** Jobs monitoring/alerts.yml names that have no target on Kubernetes, and why. */
export const JOBS_NOT_DEPLOYED: Record<string, string> = {
  watchdog: 'Strimzi autoRestart replaces the Connect watchdog (it would need the REST API, which only the operator may reach)',
};
/** Metrics only an undeployed job exports: a rule reading one is left out. */
const METRICS_NOT_DEPLOYED = /\bwelcome_connect_watchdog_\w+/;

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  [k: string]: unknown;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}

/** A job matcher's alternatives without the undeployed jobs: job=~"kafka|connect|watchdog" → job=~"kafka|connect". */
function dropJobs(expr: string): string {
  return expr.replace(
    /job=~"([^"]+)"/g,
    (_m, alts: string) =>
      `job=~"${alts
        .split('|')
        .filter((j) => !(j in JOBS_NOT_DEPLOYED))
        .join('|')}"`,
  );
}

export function kubernetesRules(alertsYaml: string): { rules: RuleFile; left: string[] } {
  const file = parse(alertsYaml) as RuleFile;
  const left: string[] = [];
  const groups = file.groups.map((g) => ({
    ...g,
    rules: g.rules
      .filter((r) => {
        const out = METRICS_NOT_DEPLOYED.test(r.expr);
        if (out) left.push(r.alert ?? r.record ?? r.expr);
        return !out;
      })
      .map((r) => ({ ...r, expr: dropJobs(r.expr) })),
  }));
  return { rules: { groups }, left };
}

export function prometheusRule(s: K8sSettings, alertsYaml: string): Manifest {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'welcome-alerts', namespace: s.namespace, labels: labels('monitoring') },
    spec: kubernetesRules(alertsYaml).rules,
  };
}

interface PromtoolTests {
  rule_files: string[];
  tests: { name?: string; alert_rule_test?: { alertname: string }[]; [k: string]: unknown }[];
  [k: string]: unknown;
}

/** The PrometheusRule's groups as a rules file, and the promtool tests without the left-out alerts. */
export function rulesForPromtool(rule: Manifest, testsYaml: string, rulesFileName: string): { rules: string; tests: string } {
  const spec = rule.spec as RuleFile;
  const kept = new Set(spec.groups.flatMap((g) => g.rules.map((r) => r.alert)).filter(Boolean));
  const tests = parse(testsYaml) as PromtoolTests;
  const filtered = tests.tests
    .map((t) => ({ ...t, alert_rule_test: t.alert_rule_test?.filter((a) => kept.has(a.alertname)) }))
    .filter((t) => t.alert_rule_test === undefined || t.alert_rule_test.length > 0);
  return { rules: stringify(spec), tests: stringify({ ...tests, rule_files: [rulesFileName], tests: filtered }) };
}
