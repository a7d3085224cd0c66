/** What every rendered object shares: its type and the labels that tie it to the pipeline. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export const PART_OF = 'welcome-pipeline';
/**
 * Our own label keys: Strimzi sets app.kubernetes.io/name and part-of on the pods it manages
 * (kafka-connect, strimzi-<cluster>), so isolation and job names use keys it leaves alone.
 * COMPONENT: every pod carrying it is denied all traffic but what network.ts allows.
 * JOB: the Prometheus job name the ServiceMonitors and PodMonitors take (their jobLabel).
 */
export const COMPONENT_LABEL = 'welcome.pipeline/component';
export const JOB_LABEL = 'welcome.pipeline/job';

export function labels(component: string): Record<string, string> {
  return { 'app.kubernetes.io/name': component, 'app.kubernetes.io/part-of': PART_OF, [COMPONENT_LABEL]: component };
}

export const jobLabels = (job: string): Record<string, string> => ({ [JOB_LABEL]: job });
