/**
 * Issue 21, for every stack test file (jest's setupFilesAfterEnv of the `stack` project): after
 * the file, every POST that reached the SFMC stand-in while it ran is counted, and no member
 * (definitionKey + MemberId, as the emailer sends them) may have been POSTed under two
 * different messageKeys — a second email, whatever SFMC's 109110 window says. A file's own
 * tests bound re-POSTs of one key where their fault explains them (accounting.ts).
 */
import { account, sendAttempts } from './accounting';

const fileStart = Date.now();

afterAll(async () => {
  const view = await sendAttempts(fileStart).catch(() => undefined);
  if (!view) return; // a file that stopped the stand-in leaves nothing to count
  // '' selects every attempt; those without a MemberId (a test calling SFMC itself) are not members
  const a = account(
    { byMessageKey: Object.fromEntries(Object.entries(view.byMessageKey).map(([k, v]) => [k, v.filter((x) => x.memberId)])), byAddress: {} },
    '',
  );
  expect(a.membersWithSecondKey).toEqual([]);
});
