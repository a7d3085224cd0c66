// Three projects: `unit` needs nothing running; `stack` talks to the real local stack
// (Kafka, Connect, registry, MariaDB, stand-ins) that `make test` starts; `faults` breaks
// that stack on purpose while signups flow and accounts for every member afterwards.
const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
};
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    // Every stack file ends by counting its POSTs at the SFMC stand-in (issue 21: no member under two messageKeys).
    {
      ...common,
      displayName: 'stack',
      testMatch: ['<rootDir>/test/stack/**/*.test.ts'],
      setupFilesAfterEnv: ['<rootDir>/test/support/accounting-hook.ts'],
      slowTestThreshold: 60,
    },
    // Fault injection on the same stack (restarts, kills, outages): `make test-faults`.
    {
      ...common,
      displayName: 'faults',
      testMatch: ['<rootDir>/test/faults/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/faults/cluster.test.ts'],
      slowTestThreshold: 120,
    },
    // The consumer image run by podman in place of each native stage (issue 23): `make test-containers`.
    { ...common, displayName: 'containers', testMatch: ['<rootDir>/test/containers/**/*.test.ts'], slowTestThreshold: 120 },
    // Broker faults on the three-node Kafka cluster (KAFKA_NODES=3): `make test-cluster`.
    { ...common, displayName: 'cluster', testMatch: ['<rootDir>/test/faults/cluster.test.ts'], slowTestThreshold: 120 },
  ],
};
