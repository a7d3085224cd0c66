/** The hop table's arithmetic: each hop is the difference of two observed times, per member. */
import { hopTable } from '../../../bench/lib/hops';
import type { BenchMember } from '../../../bench/lib/inserter';

const member = (n: number, committedAt: number, cdcAt?: number): BenchMember => ({
  seq: n,
  phase: 'latency',
  orgId: 'UA',
  orgMemberId: `m${n}`,
  messageKey: `k${n}`,
  committedAt,
  cdcAt,
});

describe('hop-by-hop latency', () => {
  it('splits commit → SFMC into the member topic, augmenter, emailer and sink hops', () => {
    const members = [member(1, 1000, 1100), member(2, 2000, 2300)];
    const t = hopTable(
      members,
      new Map([
        ['UA:m1', 1020],
        ['UA:m2', 2040],
      ]),
      new Map([
        ['UA:m1', 1050],
        ['UA:m2', 2100],
      ]),
      new Map([
        ['UA:m1', 1400],
        ['UA:m2', 2500],
      ]),
    );
    const p50 = Object.fromEntries(t.rows.map((r) => [r.hop, r.summary.p50]));
    expect(p50).toEqual({
      'commit → member topic': 20,
      'member topic → augmented topic': 30,
      'augmented topic → SFMC accepted': 50,
      'SFMC accepted → audit row': 200,
      'commit → SFMC accepted (end to end)': 100,
      'commit → audit row': 400,
    });
    expect(t.rows.find((r) => r.hop === 'commit → member topic')?.summary.max).toBe(40);
    expect(t.floorP50).toBe(20);
    expect(t.endToEndOverFloor).toBe(5);
    expect(t.complete).toBe(2);
  });

  it('leaves a member out of a hop it was not seen at, and counts it as incomplete', () => {
    const t = hopTable(
      [member(1, 1000, 1100), member(2, 2000)],
      new Map([
        ['UA:m1', 1010],
        ['UA:m2', 2010],
      ]),
      new Map([['UA:m1', 1020]]),
      new Map(),
    );
    const n = Object.fromEntries(t.rows.map((r) => [r.hop, r.summary.n]));
    expect(n['commit → member topic']).toBe(2);
    expect(n['member topic → augmented topic']).toBe(1);
    expect(n['SFMC accepted → audit row']).toBe(0);
    expect(t.complete).toBe(0);
    expect(t.total).toBe(2);
  });
});
