// Two projects: `unit` needs nothing running; `stack` talks to the real local stack
// (Kafka, Connect, registry, MariaDB, stand-ins) that `make test` starts.
const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
};
module.exports = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    { ...common, displayName: 'stack', testMatch: ['<rootDir>/test/stack/**/*.test.ts'], slowTestThreshold: 60 },
  ],
};
