// `make lint` (and the lint step of `make test`). Typed linting: the rules that catch what
// review kept finding (a promise nobody awaits, a value import used only as a type, a focused
// test that silently skips the rest) need the type checker, so they read tsconfig.json.
import js from '@eslint/js';
import jest from 'eslint-plugin-jest';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.state/**', 'bench/results/**', 'coverage/**', '**/*.js', '**/*.mjs'] },
  {
    files: ['consumers/**/*.ts', 'standins/**/*.ts', 'tools/**/*.ts', 'bench/**/*.ts', 'test/**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      // `let x` read by a closure before its one assignment (consumer-process.ts) is deliberate.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // The services log through pino (redaction, levels); only tools, the bench and tests print.
      'no-console': 'error',
    },
  },
  {
    files: ['test/**/*.ts'],
    ...jest.configs['flat/recommended'],
    rules: {
      ...jest.configs['flat/recommended'].rules,
      'jest/no-focused-tests': 'error',
      'jest/no-disabled-tests': 'error',
      // Stack tests assert inside waitFor()/helpers and hooks, and pick `it` or `it.skip` by
      // what the machine has ((ok ? it : it.skip)(...)): the rules cannot see through either.
      'jest/expect-expect': 'off',
      'jest/no-conditional-expect': 'off',
      'jest/no-standalone-expect': 'off',
      'no-console': 'off',
    },
  },
  { files: ['tools/**/*.ts', 'bench/**/*.ts'], rules: { 'no-console': 'off' } },
  // Formatting is prettier's job (`make fmt`); turn off the rules that would fight it.
  prettier,
);
